"""Query-string filters of list endpoints, as django-filter ``FilterSet`` classes.

A view filters a queryset with :func:`filtered`; an invalid value is a 400 ``invalid`` naming
each bad parameter, in the platform's error shape (a boolean is ``true`` or ``false``).
Django's form fields refuse NUL characters, which PostgreSQL cannot take in a query; dates are
compared in UTC, as PostgreSQL refuses the UTC offsets beyond 15:59 that Python parses (up to 23:59).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from platformsite.api.errors import Invalid

__all__ = ["FilterSet", "django_filters", "filter_parameters", "filtered", "refuse_unknown"]


class FilterSet(django_filters.FilterSet):
    """The base of the platform's filter sets."""


_BOOLEANS = frozenset({"", "true", "false", "True", "False"})


#: What every list takes besides its filters: the page (cursor pagination) and DRF's format.
PAGE_PARAMETERS = frozenset({"cursor", "page_size", "format"})


def refuse_unknown(request: Any, known: Any, *, prefixes: tuple[str, ...] = ()) -> None:
    """400 naming the query parameters a list does not take (``tpye=``): skipped, a misspelt
    filter would answer everything.  ``prefixes``: open families (``ext.<name>``)."""
    unknown = [
        name
        for name in request.query_params
        if name not in known and name not in PAGE_PARAMETERS and not name.startswith(prefixes)
    ]
    if unknown:
        takes = ", ".join(sorted(known) + [f"{prefix}<name>" for prefix in prefixes])
        message = f"Unknown filter: this list takes {takes} (and cursor, page_size)."
        raise Invalid("The filters are not valid.", details={name[:100]: [message] for name in unknown[:10]})


def filtered(
    filterset_class: type[FilterSet], request: Any, queryset: QuerySet, *, also: tuple[str, ...] = ()
) -> QuerySet:
    """``queryset`` narrowed by the request's query parameters; 400 if one is not valid, or is
    neither one of the filter set's nor one the view reads itself (``also``)."""
    refuse_unknown(request, filterset_class.base_filters.keys() | set(also))
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    for name, item in filterset.filters.items():
        # django-filter reads any other value of a boolean as "no filter" (``alerted=maybe``)
        if (
            isinstance(item, django_filters.BooleanFilter)
            and request.query_params.get(name, "") not in _BOOLEANS
        ):
            raise Invalid("The filters are not valid.", details={name: ["true or false."]})
    if not filterset.is_valid():
        raise Invalid("The filters are not valid.", details=dict(filterset.errors))
    cleaned = filterset.form.cleaned_data
    for name, value in cleaned.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            try:
                cleaned[name] = value.astimezone(UTC)
            except OverflowError:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
                details = {name: ["Out of range: years 1 to 9999 in UTC."]}
                raise Invalid("The filters are not valid.", details=details) from None
    return filterset.qs


_TYPES = {
    django_filters.BooleanFilter: OpenApiTypes.BOOL,
    django_filters.IsoDateTimeFilter: OpenApiTypes.DATETIME,
    django_filters.NumberFilter: OpenApiTypes.NUMBER,
}


def filter_parameters(filterset_class: type[FilterSet]) -> list[OpenApiParameter]:
    """The filter set's query parameters, for the view's ``extend_schema(parameters=...)``."""
    parameters = []
    for name, item in filterset_class.base_filters.items():
        choices = item.extra.get("choices")
        parameters.append(
            OpenApiParameter(
                name,
                _TYPES.get(type(item), OpenApiTypes.STR),
                enum=[value for value, _ in choices] if choices else None,
                description=str(item.label or ""),
            )
        )
    return parameters
