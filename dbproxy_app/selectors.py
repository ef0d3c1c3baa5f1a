"""Reads of the db service: a record by id, a page of a query, a count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dbproxy_app.backends import Row
from dbproxy_app.catalog import Entry
from dbproxy_app.query.ast import Query
from dbproxy_app.query.evaluate import matches
from dbproxy_app.query.grammar import encode_cursor
from dbproxy_app.records import Rules
from platformsite.api.errors import NotFound


def record_get(entry: Entry, table: str, record_id: str, rules: Rules) -> Row:
    """The record, or 404 ``record_not_found`` (also when the caller's row policy hides it)."""
    ref = entry.table(table)
    with entry.backend.session(write=False) as session:
        row = session.fetch(ref, [record_id]).get(record_id)
    if row is None or (rules.read is not None and not matches(rules.read, row.fields())):
        raise NotFound(
            f"No record {record_id!r} in {entry.name}/{table}.",
            "record_not_found",
            {"database": entry.name, "table": table, "id": record_id},
        )
    return row


@dataclass
class Page:
    rows: list[Row]
    next_cursor: str | None
    total: int | None


def records_query(entry: Entry, table: str, query: Query, rules: Rules, count: str | None = None) -> Page:
    """One page of ``query`` (the read policy's filter added), its next cursor, and the count asked
    for (``exact``, ``planned`` or ``estimated``; none unless asked)."""
    ref = entry.table(table)
    with entry.backend.session(write=False) as session:
        rows = session.query(ref, query, rules.read)
        total = (
            session.count(ref, query, rules.read, count, settings.DB_ESTIMATED_COUNT_THRESHOLD)
            if count
            else None
        )
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        value: Any = (
            getattr(last, query.order.field) if query.order.key is None else last.__dict__.get("order_value")
        )
        next_cursor = encode_cursor(query.order, value, last.id)
    return Page(rows, next_cursor, total)
