"""The db dashboard: databases, their tables and row policies, a record browser that takes the
API's query grammar, and the table's changes live (the ``db.record.*`` events over
``/ws/events/``)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from dbproxy_app import catalog, names, selectors
from dbproxy_app.models import Database, RowPolicy, Table
from dbproxy_app.query.grammar import parse_query
from dbproxy_app.records import NO_RULES
from platformsite.api.errors import PlatformError
from platformsite.web import staff_required

MAX_LISTED = 500


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    databases = list(Database.objects.order_by("name")[:MAX_LISTED])
    counts: dict[int, int] = {}
    for database_id in Table.objects.filter(database__in=databases).values_list("database_id", flat=True):
        counts[database_id] = counts.get(database_id, 0) + 1
    rows = [{"database": database, "tables": counts.get(database.pk, 0)} for database in databases]
    return render(request, "dbproxy_app/index.html", {"rows": rows})


def _database(name: str) -> Database:
    database = Database.objects.filter(name=name).first() if names.DATABASE.matches(name) else None
    if database is None:
        raise Http404(name)
    return database


@staff_required
def database_detail(request: HttpRequest, database: str) -> HttpResponse:
    found = _database(database)
    context = {
        "database": found,
        "tables": list(Table.objects.filter(database=found).order_by("name")[:MAX_LISTED]),
        "policies": list(RowPolicy.objects.filter(database=found).order_by("id")),
    }
    return render(request, "dbproxy_app/database.html", context)


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@staff_required
def table_detail(request: HttpRequest, database: str, table: str) -> HttpResponse:
    found = _database(database)
    if not Table.objects.filter(database=found, name=table).exists():
        raise Http404(table)
    raw = request.GET.get("q", "").strip()
    cursor = request.GET.get("cursor", "")
    error, rows, next_cursor = "", [], None
    try:
        params = [(k, v) for k, v in _pairs(raw)]
        if cursor:
            params.append(("cursor", [cursor]))
        query = parse_query(params, default_limit=50, max_limit=settings.DB_MAX_LIMIT)
        page = selectors.records_query(catalog.entry(database), table, query, NO_RULES)
        rows = [
            {
                "id": row.id,
                "version": row.version,
                "updated": row.updated,
                "metadata": row.metadata,
                "data": _short(row.data) if row.bytes is None else f"{len(row.bytes)} bytes",
            }
            for row in page.rows
        ]
        next_cursor = page.next_cursor
    except PlatformError as exc:
        error = str(exc)
    context = {
        "database": found,
        "table": table,
        "q": raw,
        "rows": rows,
        "error": error,
        "next_cursor": next_cursor,
        "subject_prefix": f"{database}/{table}/",
    }
    return render(request, "dbproxy_app/table.html", context)


def _pairs(raw: str) -> list[tuple[str, list[str]]]:
    """``meta.env=eq.prod&order=id.asc`` as the API's query string would arrive (values kept as
    typed: the browser's box takes the grammar as written, without URL encoding)."""
    grouped: dict[str, list[str]] = {}
    for part in filter(None, raw.split("&")):
        key, _, value = part.partition("=")
        grouped.setdefault(key, []).append(value)
    return list(grouped.items())
