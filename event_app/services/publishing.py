"""Publishing: events stored in bulk (COPY or multi-row INSERT) with their counters and deliveries."""

from __future__ import annotations

import json
import logging
import operator
import random
import uuid
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from event_app import grouping, live, selectors
from event_app.cloudevents import EventIn
from event_app.models import Delivery, Event, EventCount
from event_app.representation import event_dict
from platformsite.jsonvalues import scrubbed, storable

log = logging.getLogger(__name__)

_INSERT_CHUNK = 500
#: Batches at least this large go through COPY on PostgreSQL (smaller: one INSERT ... VALUES).
_COPY_FROM = 50


# --- publishing -------------------------------------------------------------------------------------


@dataclass
class Stored:
    """One published event and whether this request created it (False: a re-sent duplicate)."""

    event: Event
    created: bool


def event_publish(
    *,
    type: str,
    source: str,
    data: Any = None,
    subject: str = "",
    event_id: str | None = None,
    time: datetime | None = None,
    root_id: str = "",
    traceparent: str = "",
    extensions: dict[str, Any] | None = None,
    datacontenttype: str = "application/json",
) -> Event:
    """Store one event durably and return it; a re-sent (source, id) returns the stored one."""
    incoming = _platform_event(
        type=type,
        source=source,
        data=data,
        subject=subject,
        event_id=event_id,
        time=time,
        root_id=root_id,
        traceparent=traceparent,
        extensions=extensions,
        datacontenttype=datacontenttype,
    )
    return events_store_grouped(events=[incoming])[0].event


def event_publish_many(*, events: list[dict[str, Any]]) -> list[Event]:
    """Several events in one transaction; each dict holds :func:`event_publish`'s arguments."""
    if not events:
        return []
    return [stored.event for stored in events_store(events=[_platform_event(**item) for item in events])]


def _platform_event(
    *,
    type: str,
    source: str,
    data: Any = None,
    subject: str = "",
    event_id: str | None = None,
    time: datetime | None = None,
    root_id: str = "",
    traceparent: str = "",
    extensions: dict[str, Any] | None = None,
    datacontenttype: str = "application/json",
) -> EventIn:
    """An event the platform publishes itself.  Its subject and data may quote what a client sent
    (the client id of a failed sign-in): NUL is dropped and a lone surrogate becomes U+FFFD, since
    PostgreSQL cannot store either and such an event is never refused."""
    return EventIn(
        event_id=event_id or uuid.uuid4().hex,
        source=source,
        type=type,
        time=time,
        subject=storable(subject),
        data=scrubbed(data),
        datacontenttype=datacontenttype if data is not None else "",
        root_id=root_id,
        traceparent=traceparent,
        extensions=scrubbed(dict(extensions or {})),
    )


def events_store_grouped(*, events: list[EventIn]) -> list[Stored]:
    """:func:`events_store`, in one transaction with other small publishes of this process when
    it can be (:mod:`event_app.grouping`); answers, like it, once the events are committed."""
    if grouping.groupable(events):
        return grouping.store_grouped(events)
    return events_store(events=events)


def events_store(*, events: list[EventIn]) -> list[Stored]:
    """Store a batch in bulk (duplicates of stored events are acknowledged, not written again).

    Returns one :class:`Stored` per distinct ``(source, id)``, in the order given.
    """
    now = timezone.now()
    distinct: dict[tuple[str, str], Event] = {}
    data_json: dict[tuple[str, str], str] = {}  # as validation wrote it
    for item in events:
        key = (item.source, item.event_id)
        if key in distinct:
            continue
        if item.data_json is not None:
            data_json[key] = item.data_json
        # Positional arguments in field order: Django's fast path (a batch builds thousands).
        distinct[key] = Event(
            None,
            item.event_id,
            item.source,
            item.type,
            item.specversion,
            item.time or now,
            item.subject,
            item.datacontenttype,
            item.dataschema,
            item.data,
            item.data_base64,
            item.extensions,
            item.root_id,
            item.traceparent,
            now,
        )
    objs = list(distinct.values())
    webhooks = _webhook_matches(objs)
    # One statement (the insert and its counters) needs no transaction of its own: in autocommit
    # it is one, and durable when it returns.  That saves the BEGIN and COMMIT round trips.
    alone = not webhooks and _one_statement(objs)
    with nullcontext() if alone else transaction.atomic():
        created_keys, counted = _insert(objs, now, data_json)
        missing = [key for key in distinct if key not in created_keys]
        if missing:
            for existing in _existing(missing):
                distinct[(existing.source, existing.event_id)] = existing
        new = [distinct[key] for key in distinct if key in created_keys]
        if new:
            _queue_deliveries([(e, sid) for e, sid in webhooks if (e.source, e.event_id) in created_keys])
            if not counted:
                _count(new, now)  # last: the counter rows stay locked only until the commit
            if settings.EVENTS_LIVE_STREAM:
                transaction.on_commit(partial(broadcast, [event_dict(e) for e in new]))
    return [Stored(event, key in created_keys) for key, event in distinct.items()]


def _insert(
    objs: list[Event], now: datetime, data_json: dict[tuple[str, str], str] | None = None
) -> tuple[set[tuple[str, str]], bool]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: sets ids on the new rows, returns their keys
    and whether the minute counters were updated by the same statement.

    On PostgreSQL large batches are COPYed to a staging table first; the insert and the counter
    upsert are one statement (a data-modifying CTE).  Elsewhere: multi-row VALUES.
    """
    by_key = {(o.source, o.event_id): o for o in objs}
    created: set[tuple[str, str]] = set()
    counted = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if counted:
            if len(objs) >= _COPY_FROM:
                sql, params = _stage_copy(cursor, objs, data_json or {})
            else:
                sql, params = _insert_values(objs)
            cursor.execute(*_with_counts(sql, params, now))
            rows = cursor.fetchall()
            if len(objs) >= _COPY_FROM:
                cursor.execute("DELETE FROM event_app_stage")
        else:
            rows = []
            for begin in range(0, len(objs), _INSERT_CHUNK):
                sql, params = _insert_values(objs[begin : begin + _INSERT_CHUNK])
                cursor.execute(f"{sql} {_CONFLICT} {_RETURNING}", params)
                rows += cursor.fetchall()
    for pk, source, event_id in rows:
        by_key[(source, event_id)].id = pk
        created.add((source, event_id))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = "default"
    return created, counted


_PG_COLUMNS = (
    ("event_id", "text"),
    ("source", "text"),
    ("type", "text"),
    ("specversion", "text"),
    ("time", "timestamptz"),
    ("subject", "text"),
    ("datacontenttype", "text"),
    ("dataschema", "text"),
    ("data", "jsonb"),
    ("data_base64", "text"),
    ("extensions", "jsonb"),
    ("root_id", "text"),
    ("traceparent", "text"),
    ("received", "timestamptz"),
)
#: A staging row's values (after its ``ord``), and where its JSON columns are in the row.
_COPY_ROW = operator.attrgetter(*(name for name, _ in _PG_COLUMNS))
_COPY_DATA = 1 + [name for name, _ in _PG_COLUMNS].index("data")
_COPY_EXTENSIONS = 1 + [name for name, _ in _PG_COLUMNS].index("extensions")
_CONFLICT = 'ON CONFLICT ("source", "event_id") DO NOTHING'
_RETURNING = 'RETURNING "id", "source", "event_id"'


_COUNT_CTE = (
    'cnt AS (INSERT INTO "event_app_eventcount" '
    '("interval", "dimension", "key", "bucket", "shard", "count") '
    "SELECT 'minute', d.dim, d.key, %s, %s, count(*) FROM ins "
    "CROSS JOIN LATERAL (VALUES ('type', ins.\"type\"), ('source', ins.\"source\")) AS d(dim, key) "
    "GROUP BY d.dim, d.key ORDER BY d.dim, d.key "
    'ON CONFLICT ("interval", "dimension", "key", "bucket", "shard") '
    'DO UPDATE SET "count" = "event_app_eventcount"."count" + excluded."count") '
    'SELECT "id", "source", "event_id" FROM ins'
)


def _with_counts(insert: str, params: list[Any], now: datetime) -> tuple[str, list[Any]]:
    """One statement: the insert, plus the per-minute counters of the rows it inserted (PostgreSQL)."""
    ins = f'WITH ins AS ({insert} {_CONFLICT} RETURNING "id", "source", "event_id", "type"), '
    minute = now.replace(second=0, microsecond=0)
    return ins + _COUNT_CTE, [*params, minute, random.randrange(max(1, settings.EVENTS_COUNT_SHARDS))]


def _stage_copy(
    cursor: Any, objs: list[Event], data_json: dict[tuple[str, str], str]
) -> tuple[str, list[Any]]:
    """COPY the batch into a session-local staging table; returns the INSERT ... SELECT (batch order).

    ``data_json``: the events' data as JSON text where validation already made it, by (source, id).
    """
    columns = ", ".join(f'"{name}"' for name, _ in _PG_COLUMNS)
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS event_app_stage (ord integer, "
        + ", ".join(f'"{name}" {"text" if kind == "jsonb" else kind}' for name, kind in _PG_COLUMNS)
        + ") ON COMMIT DELETE ROWS"
    )
    # ``cursor.copy`` is psycopg's own (unwrapped): its errors are wrapped here as Django's.
    with (
        connection.wrap_database_errors,
        cursor.copy(f"COPY event_app_stage (ord, {columns}) FROM STDIN") as copy,
    ):
        for ord_, obj in enumerate(objs):
            row = [ord_, *_COPY_ROW(obj)]
            data = row[_COPY_DATA]
            if data is not None:
                row[_COPY_DATA] = data_json.get((obj.source, obj.event_id)) or json.dumps(data)
            extensions = row[_COPY_EXTENSIONS]
            row[_COPY_EXTENSIONS] = "{}" if extensions == {} else json.dumps(extensions)
            copy.write_row(row)
    json_columns = {name for name, kind in _PG_COLUMNS if kind == "jsonb"}
    selected = ", ".join(
        f'"{name}"::jsonb' if name in json_columns else f'"{name}"' for name, _ in _PG_COLUMNS
    )
    insert = f'INSERT INTO "event_app_event" ({columns}) SELECT {selected} FROM event_app_stage'  # noqa: S608
    return f"{insert} ORDER BY ord", []


def _insert_values(chunk: list[Event]) -> tuple[str, list[Any]]:
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params: list[Any] = []
    for obj in chunk:
        params += [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
    values = ", ".join([row] * len(chunk))
    return f"INSERT INTO {qn(Event._meta.db_table)} ({columns}) VALUES {values}", params  # noqa: S608


def _existing(keys: list[tuple[str, str]]) -> list[Event]:
    by_source: dict[str, list[str]] = {}
    for source, event_id in keys:
        by_source.setdefault(source, []).append(event_id)
    found: list[Event] = []
    for source, ids in by_source.items():
        found += Event.objects.filter(source=source, event_id__in=ids)
    return found


def _count(events: list[Event], now: datetime) -> None:
    """Add the batch to the per-minute counters (one upsert, sorted keys, one random shard)."""
    counts: Counter[tuple[str, str]] = Counter()
    for event in events:
        counts[(EventCount.Dimension.TYPE, event.type)] += 1
        counts[(EventCount.Dimension.SOURCE, event.source)] += 1
    minute = now.replace(second=0, microsecond=0)
    _upsert_counts(
        [(EventCount.Interval.MINUTE, dim, key, minute, n) for (dim, key), n in sorted(counts.items())],
        shard=random.randrange(max(1, settings.EVENTS_COUNT_SHARDS)),
        add=True,
    )


def _upsert_counts(rows: list[tuple[str, str, str, datetime, int]], *, shard: int, add: bool) -> None:
    if not rows:
        return
    qn = connection.ops.quote_name
    table = qn(EventCount._meta.db_table)
    cols = [qn(c) for c in ("interval", "dimension", "key", "bucket", "shard", "count")]
    params: list[Any] = []
    for interval, dim, key, bucket, n in rows:
        params += [interval, dim, key[:500], connection.ops.adapt_datetimefield_value(bucket), shard, n]
    new_count = f"{table}.{qn('count')} + excluded.{qn('count')}" if add else f"excluded.{qn('count')}"
    with connection.cursor() as cursor:
        # Names come from the model's metadata, values are parameters.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES "  # noqa: S608
            + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
            + f" ON CONFLICT ({', '.join(cols[:5])}) DO UPDATE SET {qn('count')} = {new_count}",
            params,
        )


def _webhook_matches(events: list[Event]) -> list[tuple[Event, int]]:
    """(event, subscription id) for every webhook subscription whose filter takes the event."""
    subscriptions = selectors.webhook_filters()
    return [
        (event, sid)
        for event in events
        for sid, event_filter in subscriptions
        if event_filter.matches(event.type, event.source, event.subject)
    ]


def _one_statement(objs: list[Event]) -> bool:
    """Whether :func:`_insert` writes these in one statement outside any transaction: PostgreSQL
    (the counters are part of the statement), not a COPY (two statements), no atomic block open."""
    return connection.vendor == "postgresql" and len(objs) < _COPY_FROM and not connection.in_atomic_block


def _queue_deliveries(matches: list[tuple[Event, int]]) -> None:
    """One Delivery per (new event, matching webhook subscription), in bulk; tasks start after commit."""
    deliveries = [Delivery(subscription_id=sid, event=event) for event, sid in matches]
    if not deliveries:
        return
    existing = selectors.existing_subscriptions({d.subscription_id for d in deliveries})
    deliveries = [d for d in deliveries if d.subscription_id in existing]
    if not deliveries:
        return
    Delivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
    from event_app import tasks
    from platformsite.tasks import enqueue

    for sid in sorted({d.subscription_id for d in deliveries}):
        enqueue(tasks.deliver_subscription, sid)


def broadcast(events: list[dict[str, Any]]) -> None:
    """Push stored events to every websocket subscriber (each consumer filters for itself)."""
    live.push(events)
