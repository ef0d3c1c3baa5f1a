"""Where spans are kept, behind one small interface (``base.SpanStore``).

``TRACE_STORE`` names the class; the default, ``trace_app.store.sql.SqlStore``, keeps spans in
the platform's own database (PostgreSQL partitioned by day, or SQLite).  A column store for
larger fleets (ClickHouse) is another class with the same methods (docs/trace.md).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from trace_app.store.base import SpanStore, TraceQuery

__all__ = ["SpanStore", "TraceQuery", "get_store"]


@cache
def get_store() -> SpanStore:
    return import_string(settings.TRACE_STORE)()
