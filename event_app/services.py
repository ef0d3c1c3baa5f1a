"""Writes of the events service.

:func:`event_publish` is the one function every other service calls for its platform events
(types named ``<service>.<entity>.<verb>``, source ``/platform/<service>``); the API stores
batches with :func:`events_store`.  Both write the events, their counters and the webhook
deliveries they cause in one transaction; the websocket push and the delivery tasks follow
after commit, so nothing is announced that is not durably stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import operator
import random
import secrets
import time as time_module
import uuid
from collections import Counter
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from event_app import grouping, live, selectors
from event_app.cloudevents import EventIn
from event_app.live import LIVE_GROUP  # noqa: F401 - re-exported
from event_app.models import Delivery, Event, EventCount, Subscription
from event_app.representation import cloudevent_dict, event_dict

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
    return EventIn(
        event_id=event_id or uuid.uuid4().hex,
        source=source,
        type=type,
        time=time,
        subject=subject,
        data=data,
        datacontenttype=datacontenttype if data is not None else "",
        root_id=root_id,
        traceparent=traceparent,
        extensions=dict(extensions or {}),
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
    with cursor.copy(f"COPY event_app_stage (ord, {columns}) FROM STDIN") as copy:
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


# --- subscriptions ------------------------------------------------------------------------------------


def _check_sink(sink: str, url: str) -> None:
    if sink == Subscription.Sink.WEBHOOK:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in {"http", "https"}:
            raise ValidationError({"url": ["A webhook URL must use http or https."]})
        if not _deliverable(url):
            raise ValidationError({"url": ["A webhook URL needs a host, a valid port and no spaces."]})
    elif url:
        raise ValidationError({"url": ["A websocket subscription has no URL."]})


def _deliverable(url: str) -> bool:
    """Whether httpx can send to ``url`` (else every attempt fails until the delivery is dead)."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return bool(parsed.host) and (parsed.port is None or 0 < parsed.port < 65536)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@transaction.atomic
def subscription_create(
    *,
    name: str,
    types: list[str] | None = None,
    sources: list[str] | None = None,
    subject_prefix: str = "",
    sink: str = Subscription.Sink.WEBHOOK,
    url: str = "",
    secret: str = "",
    owner: str = "",
) -> Subscription:
    _check_sink(sink, url)
    if Subscription.objects.filter(name=name).exists():
        raise ValidationError({"name": [f"A subscription named {name!r} exists."]})
    subscription = Subscription.objects.create(
        name=name,
        types=list(types or []),
        sources=list(sources or []),
        subject_prefix=subject_prefix,
        sink=sink,
        url=url,
        secret=secret or (new_secret() if sink == Subscription.Sink.WEBHOOK else ""),
        owner=owner,
    )
    transaction.on_commit(selectors.forget_webhook_filters)
    return subscription


@transaction.atomic
def subscription_update(*, subscription: Subscription, **changes: Any) -> Subscription:
    for name, value in changes.items():
        setattr(subscription, name, value)
    _check_sink(subscription.sink, subscription.url)
    subscription.save()
    transaction.on_commit(selectors.forget_webhook_filters)
    if subscription.is_active and subscription.sink == Subscription.Sink.WEBHOOK:
        from event_app import tasks
        from platformsite.tasks import enqueue

        enqueue(tasks.deliver_subscription, subscription.pk)
    return subscription


@transaction.atomic
def subscription_delete(*, subscription: Subscription) -> None:
    # Wait for publishes that hold the row (FOR KEY SHARE, see selectors.existing_subscriptions)
    # so that the cascade below sees the deliveries they committed.
    list(Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk"))
    subscription.delete()
    transaction.on_commit(selectors.forget_webhook_filters)


# --- webhook delivery ----------------------------------------------------------------------------------


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"))
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (1, 2, ...): doubling, capped, with 10% jitter."""
    base = settings.EVENTS_WEBHOOK_BACKOFF_SECONDS * 2 ** max(0, attempts - 1)
    delay = min(base, settings.EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS)
    return delay * (1 + random.random() / 10) if delay else 0.0


def _post(client: httpx.Client, subscription: Subscription, delivery: Delivery) -> tuple[int | None, str]:
    body = json.dumps(cloudevent_dict(delivery.event), separators=(",", ":")).encode()
    message_id = f"dlv_{delivery.pk}"
    timestamp = int(time_module.time())
    headers = {
        "content-type": "application/cloudevents+json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(subscription.secret, message_id, timestamp, body),
        "user-agent": "micro-platform-events/1",
    }
    try:
        response = client.post(subscription.url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}"


@dataclass(frozen=True)
class DeliveryRun:
    """How a delivery run stopped: with more to send now (``more``), with the queue head waiting
    for its retry (``retry_in`` seconds), or with nothing to do (neither)."""

    more: bool = False
    retry_in: float | None = None
    #: The waiting delivery and its attempts so far: one wait, whoever finds it.
    waiting: tuple[int, int] | None = None


def subscription_deliver(*, subscription_id: int, limit: int | None = None) -> DeliveryRun:
    """Send a subscription's pending deliveries, oldest first, one at a time.

    Stops at the first delivery not yet due (ordering: nothing overtakes a delivery waiting
    for its retry) and says when it falls due, so the caller can resume then rather than at
    beat's next scan.  Only one runner per subscription at a time (a lock in the shared cache).
    """
    limit = limit or settings.EVENTS_WEBHOOK_RUN_LIMIT
    lock_key = f"events:deliver-lock:{subscription_id}"
    lock_seconds = int(settings.EVENTS_WEBHOOK_TIMEOUT * 2 + 10)
    if not cache.add(lock_key, 1, lock_seconds):
        return DeliveryRun()
    try:
        subscription = Subscription.objects.filter(
            pk=subscription_id, is_active=True, sink=Subscription.Sink.WEBHOOK
        ).first()
        if subscription is None:
            return DeliveryRun()
        queue = Delivery.objects.filter(subscription_id=subscription_id, status=Delivery.Status.PENDING)
        with httpx.Client(timeout=settings.EVENTS_WEBHOOK_TIMEOUT, follow_redirects=False) as client:
            for _ in range(limit):
                delivery = queue.select_related("event").order_by("id").first()
                if delivery is None:
                    return DeliveryRun()
                if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now():
                    return _waiting(delivery)
                cache.touch(lock_key, lock_seconds)
                code, error = _post(client, subscription, delivery)
                _record_attempt(delivery=delivery, status_code=code, error=error)
                if delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at > timezone.now():
                    return _waiting(delivery)
        return DeliveryRun(more=True)
    finally:
        cache.delete(lock_key)


def _waiting(delivery: Delivery) -> DeliveryRun:
    retry_in = (delivery.next_attempt_at - timezone.now()).total_seconds()
    return DeliveryRun(retry_in=retry_in, waiting=(delivery.pk, delivery.attempts))


def _record_attempt(*, delivery: Delivery, status_code: int | None, error: str) -> None:
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.EVENTS_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = Delivery.Status.DEAD
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempts",
            "last_status_code",
            "last_error",
            "status",
            "delivered_at",
            "next_attempt_at",
        ]
    )


@transaction.atomic
def deliveries_redeliver(*, delivery_ids: Iterable[int]) -> int:
    """Put dead letters back in their subscriptions' queues (attempts reset); returns how many."""
    ids = list(delivery_ids)
    queued = Delivery.objects.filter(pk__in=ids, status=Delivery.Status.DEAD)
    subscription_ids = set(queued.values_list("subscription_id", flat=True))
    count = queued.update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error=""
    )
    from event_app import tasks
    from platformsite.tasks import enqueue

    for sid in sorted(subscription_ids):
        enqueue(tasks.deliver_subscription, sid)
    return count


def deliveries_due_subscriptions() -> list[int]:
    """Subscriptions whose oldest pending delivery is due (beat starts a runner for each)."""
    now = timezone.now()
    pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
    candidates = set(
        pending.filter(next_attempt_at__lte=now).values_list("subscription_id", flat=True).distinct()
    ) | set(pending.filter(next_attempt_at__isnull=True).values_list("subscription_id", flat=True).distinct())
    due = []
    for subscription_id in sorted(candidates):
        head = pending.filter(subscription_id=subscription_id).order_by("id").first()
        if head is not None and (head.next_attempt_at is None or head.next_attempt_at <= now):
            due.append(subscription_id)
    return due


# --- aggregation and retention ----------------------------------------------------------------------------


def counts_rollup(*, now: datetime | None = None) -> int:
    """Roll finished hours of minute counters into hour rows (idempotent); drop old minute rows."""
    now = now or timezone.now()
    until = (now - timedelta(minutes=1)).replace(minute=0, second=0, microsecond=0)
    start = selectors.rolled_up_until()
    minutes = EventCount.objects.filter(interval=EventCount.Interval.MINUTE, bucket__lt=until)
    if start is not None:
        minutes = minutes.filter(bucket__gte=start)
    rows = (
        minutes.annotate(hour=TruncHour("bucket"))
        .values("dimension", "key", "hour")
        .annotate(total=Sum("count"))
        .order_by("dimension", "key", "hour")
    )
    upserts = [(EventCount.Interval.HOUR, r["dimension"], r["key"], r["hour"], r["total"]) for r in rows]
    with transaction.atomic():
        for begin in range(0, len(upserts), 500):
            _upsert_counts(upserts[begin : begin + 500], shard=0, add=False)
        EventCount.objects.filter(
            interval=EventCount.Interval.MINUTE,
            bucket__lt=now - timedelta(hours=settings.EVENTS_MINUTE_COUNTS_KEEP_HOURS),
        ).delete()
    return len(upserts)


def retention_rules() -> list[tuple[str, int]]:
    """(type prefix, days), longest prefix first; ``""`` (all types) defaults to 30 days."""
    rules = {str(prefix).rstrip("*"): int(days) for prefix, days in settings.EVENTS_RETENTION_DAYS.items()}
    rules.setdefault("", 30)
    return sorted(rules.items(), key=lambda item: len(item[0]), reverse=True)


def events_purge_expired(*, now: datetime | None = None, max_batches: int = 1000) -> int:
    """Delete events older than their type's retention, in batches; returns how many."""
    now = now or timezone.now()
    rules = retention_rules()
    deleted = 0
    for prefix, days in rules:
        expired = Event.objects.filter(received__lt=now - timedelta(days=days))
        if prefix:
            expired = expired.filter(type__startswith=prefix)
        for longer, _ in rules:
            if longer != prefix and longer.startswith(prefix):
                expired = expired.exclude(type__startswith=longer)
        for _ in range(max_batches):
            ids = list(expired.order_by("id").values_list("id", flat=True)[: settings.EVENTS_PURGE_BATCH])
            if not ids:
                break
            with transaction.atomic():
                Delivery.objects.filter(event_id__in=ids).delete()
                deleted += Event.objects.filter(id__in=ids)._raw_delete(using="default")
    return deleted
