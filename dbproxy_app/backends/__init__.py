"""Backends by name: where a database's records live (see :mod:`.base` to add one)."""

from __future__ import annotations

from dbproxy_app.backends.base import Backend, RecordExists, Row, Session, TableRef, Unavailable
from dbproxy_app.backends.platform import PlatformBackend
from dbproxy_app.backends.postgresql import PostgresBackend
from dbproxy_app.backends.sqlite import SqliteBackend

BACKENDS: dict[str, type[Backend]] = {
    PlatformBackend.name: PlatformBackend,
    PostgresBackend.name: PostgresBackend,
    SqliteBackend.name: SqliteBackend,
}

__all__ = ["BACKENDS", "Backend", "RecordExists", "Row", "Session", "TableRef", "Unavailable"]
