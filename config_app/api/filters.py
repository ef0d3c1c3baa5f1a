"""Filters of the config history lists."""

from __future__ import annotations

from django.core.validators import RegexValidator

from config_app.models import Revision
from platformsite.api.filters import FilterSet, django_filters
from platformsite.api.validators import SLUG


class RevisionFilter(FilterSet):
    """``env``, ``author`` (exact) and ``from`` (inclusive) / ``to`` (exclusive), RFC 3339."""

    env = django_filters.CharFilter(
        label="Only this environment.",
        validators=[RegexValidator(rf"\A{SLUG.pattern}\Z", f"An environment name: {SLUG.hint}.")],
    )
    author = django_filters.CharFilter(label="Only this author (service:x or user:y).")
    from_ = django_filters.IsoDateTimeFilter(
        field_name="created", lookup_expr="gte", label="RFC 3339, inclusive."
    )
    to = django_filters.IsoDateTimeFilter(
        field_name="created", lookup_expr="lt", label="RFC 3339, exclusive."
    )

    class Meta:
        model = Revision
        fields: list[str] = []


# ``from`` is a Python keyword: the filter is declared as ``from_`` and answers to ``from``.
RevisionFilter.base_filters["from"] = RevisionFilter.base_filters.pop("from_")
