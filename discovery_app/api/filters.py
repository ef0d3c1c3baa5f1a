"""Filters of the discovery lists."""

from __future__ import annotations

from discovery_app.models import Result
from platformsite.api.filters import FilterSet, django_filters


class ResultFilter(FilterSet):
    """``since``: only results after this index (a watcher's resume point)."""

    since = django_filters.NumberFilter(
        field_name="index", lookup_expr="gt", label="Results after this index."
    )

    class Meta:
        model = Result
        fields: list[str] = []
