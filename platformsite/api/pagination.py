"""Cursor pagination for every list: stable under inserts, no OFFSET scans."""

from django.core.exceptions import ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound


class CursorPagination(pagination.CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and "\x00" in cursor.position:
            raise NotFound(self.invalid_cursor_message)  # PostgreSQL refuses NUL in a query
        return cursor

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, ValidationError) as exc:
            # A cursor that decodes, but whose position the ordering field cannot hold (a tampered
            # one): refused like any other invalid cursor, not a 500.
            raise NotFound(self.invalid_cursor_message) from exc
