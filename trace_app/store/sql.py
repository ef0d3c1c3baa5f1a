"""Spans in the platform's own database: PostgreSQL (COPY, day partitions, a GIN index on tags)
or SQLite (the embedded default: batched inserts and deletes)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, Max, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from trace_app.models import Edge, Operation, Span, TagValue
from trace_app.store.base import COLUMNS, JSON_COLUMNS, EdgeCount, TraceQuery

#: Rows deleted per statement when expiring on SQLite (and per service on PostgreSQL).
DELETE_BATCH = 5000
_COPY = f"COPY {Span._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
_EDGE_UPSERT = (
    f"INSERT INTO {Edge._meta.db_table} (minute, parent, child, bucket, calls, errors, duration_sum) "  # noqa: S608 - the table name is the model's
    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (minute, parent, child, bucket) DO UPDATE SET "
    f"calls = {Edge._meta.db_table}.calls + excluded.calls, "
    f"errors = {Edge._meta.db_table}.errors + excluded.errors, "
    f"duration_sum = {Edge._meta.db_table}.duration_sum + excluded.duration_sum"
)
_HALF_FIELDS = (
    "trace_id",
    "span_id",
    "parent_id",
    "kind",
    "service",
    "shared",
    "duration",
    "error",
    "timestamp",
)
_HALVES = (
    f"SELECT {', '.join(_HALF_FIELDS)} FROM {Span._meta.db_table} "  # noqa: S608 - the model's table
    "WHERE trace_id = ANY(%s) AND (span_id = ANY(%s) OR parent_id = ANY(%s))"
)
_EMPTY = {dict: "{}", list: "[]"}


def _json(value: Any, encode: Any) -> str:
    """A JSON column's text for COPY (most of them are empty: no encoder call for those)."""
    return _EMPTY[type(value)] if not value else encode(value)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


class SqlStore:
    def write(self, spans: list[dict[str, Any]]) -> None:
        if not spans:
            return
        if _postgres():
            encode = json.JSONEncoder(separators=(",", ":")).encode
            # COPY goes to psycopg's own cursor: its errors are wrapped here as Django's
            # (an OperationalError while the database restarts is a 503, not a 500).
            with (
                connection.cursor() as cursor,
                connection.wrap_database_errors,
                cursor.cursor.copy(_COPY) as copy,
            ):
                for span in spans:
                    copy.write_row(
                        [_json(span[c], encode) if c in JSON_COLUMNS else span[c] for c in COLUMNS]
                    )
        else:
            Span.objects.bulk_create([Span(**span) for span in spans], batch_size=500)

    # --- reads ----------------------------------------------------------------------------

    def _matching(self, query: TraceQuery) -> QuerySet[Span]:
        spans = Span.objects.filter(timestamp__gte=query.start, timestamp__lte=query.end)
        name = "name__iexact" if query.operation_any_case else "name"
        exact = {"service": query.service, "remote_service": query.remote_service, name: query.operation}
        spans = spans.filter(**{field: value for field, value in exact.items() if value})
        if query.min_duration is not None:
            spans = spans.filter(duration__gte=query.min_duration)
        if query.max_duration is not None:
            spans = spans.filter(duration__lte=query.max_duration)
        if query.error_only:
            spans = spans.filter(error=True)
        tags: dict[str, str] = {}
        for key, value in query.tags:
            if tags.setdefault(key, value) != value:  # no span holds two values of one tag
                return spans.none()
        if tags and _postgres():
            spans = spans.filter(tags__contains=tags)  # the GIN index (jsonb_path_ops)
        elif tags:
            table = Span._meta.db_table
            for i, (key, value) in enumerate(tags.items()):
                path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
                matches = RawSQL(  # noqa: S611 - path and value are parameters
                    f"json_extract({table}.tags, %s) = %s", [path, value], output_field=BooleanField()
                )
                spans = spans.alias(**{f"tag_{i}": matches}).filter(**{f"tag_{i}": True})
        for i, word in enumerate(query.words):
            spans = spans.alias(**{f"word_{i}": self._annotated(word)}).filter(
                Q(tags__has_key=word) | Q(**{f"word_{i}": True})
            )
        return spans

    @staticmethod
    def _annotated(word: str) -> RawSQL:
        """True when one of the span's annotations has ``word`` as its value."""
        table = Span._meta.db_table
        if _postgres():
            sql = f"{table}.annotations @> jsonb_build_array(jsonb_build_object('value', %s::text))"
        else:
            sql = (
                f"EXISTS (SELECT 1 FROM json_each({table}.annotations) AS a "  # noqa: S608 - the model's table
                "WHERE json_extract(a.value, '$.value') = %s)"
            )
        return RawSQL(sql, [word], output_field=BooleanField())  # noqa: S611 - the word is a parameter

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        newest = (
            self._matching(query)
            .values("trace_id")
            .annotate(newest=Max("timestamp"))
            .order_by("-newest")[: query.limit]
        )
        return [row["trace_id"] for row in newest]

    def spans(self, trace_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = sorted(set(trace_ids))
        if not ids:
            return []
        return list(Span.objects.filter(trace_id__in=ids).order_by("timestamp", "id").values(*COLUMNS))

    def halves(self, trace_ids: Iterable[str], span_ids: Iterable[str]) -> list[dict[str, Any]]:
        traces, ids = sorted(set(trace_ids)), sorted(set(span_ids))
        if not traces or not ids:
            return []
        if _postgres():  # arrays: one parameter each, however many ids a batch has
            with connection.cursor() as cursor:
                cursor.execute(_HALVES, [traces, ids, ids])
                return [dict(zip(_HALF_FIELDS, row, strict=True)) for row in cursor.fetchall()]
        found = Span.objects.filter(Q(span_id__in=ids) | Q(parent_id__in=ids), trace_id__in=traces)
        return list(found.values(*_HALF_FIELDS))

    def known_traces(self, trace_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(trace_ids))
        if not ids:
            return set()
        return set(Span.objects.filter(trace_id__in=ids).values_list("trace_id", flat=True).distinct())

    # --- the service graph ----------------------------------------------------------------

    def add_edges(self, edges: list[EdgeCount]) -> None:
        if not edges:
            return
        rows = sorted(  # one order for every writer: concurrent upserts cannot deadlock
            (e.minute, e.parent, e.child, e.bucket, e.calls, e.errors, e.duration_sum) for e in edges
        )
        with connection.cursor() as cursor:
            cursor.executemany(_EDGE_UPSERT, rows)

    def edges(self, first_minute: int, last_minute: int) -> list[EdgeCount]:
        rows = (
            Edge.objects.filter(minute__gte=first_minute, minute__lte=last_minute)
            .values("parent", "child", "bucket")
            .annotate(n=Sum("calls"), e=Sum("errors"), d=Sum("duration_sum"))
            .order_by("parent", "child", "bucket")
        )
        return [EdgeCount(0, r["parent"], r["child"], r["bucket"], r["n"], r["e"], r["d"]) for r in rows]

    # --- names seen -----------------------------------------------------------------------

    def note_operations(self, operations: list[tuple[str, str, str, str]], seen: int) -> None:
        Operation.objects.bulk_create(
            [
                Operation(service=s, name=n, kind=k, remote_service=r, last_seen=seen)
                for s, n, k, r in sorted(operations)
            ],
            update_conflicts=True,
            unique_fields=["service", "name", "kind", "remote_service"],
            update_fields=["last_seen"],
        )

    def operations(self) -> list[dict[str, Any]]:
        return list(Operation.objects.values("service", "name", "kind", "remote_service", "last_seen"))

    def note_tag_values(self, values: list[tuple[str, str]], seen: int) -> None:
        TagValue.objects.bulk_create(
            [TagValue(key=k, value=v[:255], last_seen=seen) for k, v in sorted(values)],
            update_conflicts=True,
            unique_fields=["key", "value"],
            update_fields=["last_seen"],
        )

    def tag_values(self, key: str) -> list[str]:
        return list(TagValue.objects.filter(key=key).order_by("value").values_list("value", flat=True))

    # --- retention ------------------------------------------------------------------------

    def expire(self, before: int, services: dict[str, int]) -> int:
        from trace_app.store import partitions

        deleted = 0
        if _postgres():
            partitions.drop_before(before)
        else:
            deleted += _delete_batched(Span.objects.filter(timestamp__lt=before))
        for service, cutoff in services.items():
            deleted += _delete_batched(Span.objects.filter(service=service, timestamp__lt=cutoff))
        Edge.objects.filter(minute__lt=before // 60_000_000).delete()
        Operation.objects.filter(last_seen__lt=before).delete()
        TagValue.objects.filter(last_seen__lt=before).delete()
        return deleted


def _delete_batched(spans: QuerySet[Span]) -> int:
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(spans.values_list("id", flat=True)[:DELETE_BATCH])
            if not ids:
                return deleted
            deleted += Span.objects.filter(id__in=ids).delete()[0]
