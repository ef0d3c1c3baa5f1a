"""Filters of the discovery lists."""

from __future__ import annotations

from django import forms

from discovery_app.models import Result
from platformsite.api.filters import FilterSet, django_filters


class IndexFilter(django_filters.NumberFilter):
    """A watch index: a whole number from 0 (a negative or fractional one is a 400, not "all")."""

    field_class = forms.IntegerField


class ResultFilter(FilterSet):
    """``since``: only results after this index (a watcher's resume point)."""

    since = IndexFilter(field_name="index", lookup_expr="gt", label="Results after this index.", min_value=0)

    class Meta:
        model = Result
        fields: list[str] = []
