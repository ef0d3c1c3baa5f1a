"""Cursor pagination for every list: stable under inserts, no OFFSET scans."""

from django.core.exceptions import ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from platformsite.api.errors import Invalid


class CursorPagination(pagination.CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        """``?page_size=`` from 1 (larger is taken as 1000); anything else is a 400 naming it,
        not a silent fall back to the default (DRF's own behaviour)."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and int(raw) > 0):
            raise Invalid(
                f"page_size is a whole number from 1 (over {self.max_page_size}: {self.max_page_size}).",
                details={self.page_size_query_param: ["A whole number from 1."]},
            )
        return min(int(raw), self.max_page_size)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)  # DRF answers one it cannot decode with a 404
        except NotFound:
            raise invalid_cursor() from None
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise invalid_cursor()  # PostgreSQL refuses NUL in a query
        return cursor

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, ValidationError) as exc:
            # A cursor that decodes, but whose position the ordering field cannot hold (a tampered
            # one): refused like any other invalid cursor, not a 500.
            raise invalid_cursor() from exc


def invalid_cursor() -> Invalid:
    """400 ``invalid_cursor``: a ``?cursor=`` no list gave (a bad request, not a missing page)."""
    return Invalid(
        "The cursor is not one this list gave: follow the page's next or previous link as it is.",
        code="invalid_cursor",
        details={"cursor": ["Not a cursor of this list."]},
    )
