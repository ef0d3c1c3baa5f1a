"""Filters of the monitor lists."""

from __future__ import annotations

from monitor_app.models import Check, Flip, State
from platformsite.api.filters import FilterSet, django_filters


class CheckFilter(FilterSet):
    service = django_filters.CharFilter(label="Only this service's checks.")
    node = django_filters.CharFilter(label="Only this node's checks (empty: jobs).")
    status = django_filters.ChoiceFilter(choices=State.choices, label="Only checks in this state.")
    kind = django_filters.ChoiceFilter(choices=Check.Kind.choices, label="report, period or cron.")

    class Meta:
        model = Check
        fields: list[str] = []


class FlipFilter(FilterSet):
    service = django_filters.CharFilter(label="Only this service's flips.")
    since = django_filters.IsoDateTimeFilter(
        field_name="at", lookup_expr="gte", label="At or after this time."
    )
    alerted = django_filters.BooleanFilter(
        method="filter_alerted", label="Only flips that raised an alert (or none)."
    )

    class Meta:
        model = Flip
        fields: list[str] = []

    def filter_alerted(self, queryset, name, value):
        return queryset.exclude(alert="") if value else queryset.filter(alert="")
