"""Reads of the events service: search, related events, summaries, the webhook filters cache."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Max, Q, QuerySet, Sum
from django.db.models.functions import TruncHour

from event_app.cloudevents import EXTENSION_NAME, UNSTORABLE_TEXT, parse_time
from event_app.filters import EventFilter, too_many
from event_app.models import Delivery, Event, EventCount, Subscription
from platformsite import invalidation, localstate
from platformsite.cache import CACHE_DOWN
from platformsite.jsonvalues import UNSTORABLE_CHARS

WEBHOOK_FILTERS_KEY = "events:webhook-filters:v2"  # (version, rows); v1 held the rows alone
#: Bumped by every subscription change; the cached filters carry the version they were read under, so a
#: reader that loaded the table before a change cannot put its old list back for everyone else.
WEBHOOK_FILTERS_VERSION_KEY = "events:webhook-filters:version"
RELATED_LIMIT = 100
_INTEGER = re.compile(r"-?[0-9]+")

log = logging.getLogger(__name__)


#: This process's copy of the webhook filters: (last checked, filters); see platformsite.invalidation.
_local_filters: tuple[float, list[tuple[int, EventFilter]]] | None = None


def webhook_filters() -> list[tuple[int, EventFilter]]:
    """Active webhook subscriptions and their filters: this process's copy while invalidation
    announcements are heard, else the shared cache; dropped on every subscription change."""
    global _local_filters
    now = time.monotonic()
    held = _local_filters  # read once: the listener thread may drop it meanwhile
    if held is not None and now - held[0] < invalidation.trust_seconds(0.0):
        _stats.hits += 1
        return held[1]
    _stats.misses += 1
    taken = invalidation.epoch()
    # While Redis is down this raises (503): an event stored then could not reach the live stream,
    # and a subscriber that already heard a later one would never be sent it (docs/faults.md).
    filters = _filters(_shared_rows())
    if invalidation.still(taken):
        _local_filters = (now, filters)
    return filters


def _shared_rows() -> list[tuple[int, list[str], list[str], str]]:
    """The rows as cached under the current version, read from the database (and cached) if not."""
    shared = cache.get_many([WEBHOOK_FILTERS_VERSION_KEY, WEBHOOK_FILTERS_KEY])
    version = shared.get(WEBHOOK_FILTERS_VERSION_KEY)
    if version is None:
        cache.add(WEBHOOK_FILTERS_VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(WEBHOOK_FILTERS_VERSION_KEY)
    cached = shared.get(WEBHOOK_FILTERS_KEY)
    cached_version, rows = cached if isinstance(cached, tuple) and len(cached) == 2 else (None, None)
    if rows is None or version is None or cached_version != version:
        rows = _active_rows()
        cache.set(WEBHOOK_FILTERS_KEY, (version, rows), 300)
    return rows


def _active_rows() -> list[tuple[int, list[str], list[str], str]]:
    return [
        (s.pk, s.types, s.sources, s.subject_prefix)
        for s in Subscription.objects.filter(is_active=True, sink=Subscription.Sink.WEBHOOK)
    ]


def _filters(rows: list[tuple[int, list[str], list[str], str]]) -> list[tuple[int, EventFilter]]:
    return [(pk, EventFilter.of(types, sources, prefix)) for pk, types, sources, prefix in rows]


def _forget_local_filters(*_: object) -> None:
    global _local_filters
    _local_filters = None


def _local_filter_count() -> int:
    held = _local_filters  # read once: the listener thread may drop it meanwhile
    return len(held[1]) if held is not None else 0


invalidation.register("events.webhooks", _forget_local_filters, _forget_local_filters)
_stats = localstate.register_cache(
    "events.webhook_filters", size=_local_filter_count, reset=_forget_local_filters
)


def forget_webhook_filters() -> None:
    """Drop the cached filters, inside the transaction of a subscription change: if the shared cache
    cannot be reached the change is rolled back (``503``), so that no cached list outlives it once
    Redis is back.  :func:`forget_webhook_filters_again` follows after commit."""
    cache.set(WEBHOOK_FILTERS_VERSION_KEY, uuid.uuid4().hex, None)
    cache.delete(WEBHOOK_FILTERS_KEY)
    invalidation.announce("events.webhooks", "")


def forget_webhook_filters_again() -> None:
    """After commit, again: a reader that loaded the table between the first drop and the commit
    cached the rows before the change.  The change is stored by now, so a shared cache gone down
    in between is logged, not raised (that reader's list lives until its expiry, 300 s)."""
    try:
        forget_webhook_filters()
    except CACHE_DOWN as exc:
        log.warning("events: the webhook filters could not be dropped after a change: %s", exc)


def existing_subscriptions(pks: set[int]) -> set[int]:
    """Which of ``pks`` still exist, each held against deletion until the caller's transaction ends
    (PostgreSQL ``FOR KEY SHARE``, the lock a foreign key check takes, so publishers do not block
    each other): deliveries are only queued for these, so a subscription deleted while its filters
    were cached costs nothing but the delivery, never the publish."""
    if not pks:
        return set()
    if connection.vendor != "postgresql":
        return set(Subscription.objects.filter(pk__in=pks).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {connection.ops.quote_name(Subscription._meta.db_table)}"  # noqa: S608
            " WHERE id = ANY(%s) FOR KEY SHARE",
            [sorted(pks)],
        )
        return {row[0] for row in cursor.fetchall()}


def _time(params: Any, name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise ValidationError({name: [str(exc)]}) from exc


def _values(params: Any, name: str) -> list[str]:
    getlist = getattr(params, "getlist", None)
    raw = getlist(name) if getlist else [params.get(name)] if params.get(name) else []
    values = [v.strip() for value in raw for v in value.split(",") if v.strip()]
    if problem := too_many(name, values):
        raise ValidationError({name: [problem]})
    return values


def event_search(params: Any) -> QuerySet[Event]:
    """Events matching the query parameters of ``GET /api/v1/events/`` (unordered).

    ``type`` (exact, ``order.*`` by prefix, several comma-separated), ``source``, ``subject``
    (exact, or prefix with a trailing ``*``), ``root_id``, ``from``/``to`` (on ``time``),
    ``after``/``before`` (platform ids) and ``ext.<name>=value`` (``metadata.<name>`` alike).
    """
    events = Event.objects.all()
    getlist = getattr(params, "getlist", None)
    for key in params:  # PostgreSQL refuses NUL and lone surrogates in text
        values = getlist(key) if getlist else [params.get(key)]
        if any(isinstance(value, str) and UNSTORABLE_CHARS.search(value) for value in values):
            raise ValidationError({key: [UNSTORABLE_TEXT]})
    condition = EventFilter.of(_values(params, "type"), _values(params, "source")).q()
    if subject := params.get("subject"):
        condition &= Q(subject__startswith=subject[:-1]) if subject.endswith("*") else Q(subject=subject)
    if root_id := params.get("root_id"):
        condition &= Q(root_id=root_id)
    if (since := _time(params, "from")) is not None:
        condition &= Q(time__gte=since)
    if (until := _time(params, "to")) is not None:
        condition &= Q(time__lt=until)
    for name, bound in (("after", "id__gt"), ("before", "id__lt")):
        if value := params.get(name):
            if (number := _integer(value)) is None or number < 0:
                raise ValidationError({name: ["must be an event id (an integer)"]})
            condition &= Q(**{bound: number})
    for key in params:
        prefix, _, name = key.partition(".")
        if prefix in {"ext", "metadata"} and "." in key:
            condition &= _extension(name, params.get(key), key)
    return events.filter(condition)


def _integer(value: str) -> int | None:
    """``value`` as an integer, or None (``str.isdigit`` takes '²', which ``int`` refuses)."""
    if not _INTEGER.fullmatch(value):
        return None
    try:
        return int(value)
    except ValueError:  # more digits than int() converts
        return None


def _extension(name: str, value: str, parameter: str) -> Q:
    if not EXTENSION_NAME.match(name):
        raise ValidationError({parameter: ["extension names are lowercase letters and digits"]})
    if connection.vendor == "postgresql":  # containment: served by the GIN index on extensions
        condition = Q(extensions__contains={name: value})
        if (number := _integer(value)) is not None:
            condition |= Q(extensions__contains={name: number})
        if value in {"true", "false"}:
            condition |= Q(extensions__contains={name: value == "true"})
        return condition
    condition = Q(**{f"extensions__{name}": value})
    if (number := _integer(value)) is not None:
        condition |= Q(**{f"extensions__{name}": number})
    return condition


def related_events(event: Event, limit: int = RELATED_LIMIT) -> list[Event]:
    """Other events of the same flow (same ``root_id``, or whose root is this event), oldest first."""
    condition = Q(root_id=event.event_id)
    if event.root_id:
        condition |= Q(root_id=event.root_id) | Q(event_id=event.root_id)
    return list(Event.objects.filter(condition).exclude(pk=event.pk).order_by("id")[:limit])


def rolled_up_until() -> datetime | None:
    """End of the last hour rolled up into hour counters (None before the first roll-up)."""
    last = EventCount.objects.filter(interval=EventCount.Interval.HOUR).aggregate(last=Max("bucket"))["last"]
    return last + timedelta(hours=1) if last else None


def event_summary(*, since: datetime, until: datetime, group_by: str, interval: str) -> dict[str, Any]:
    """Counts per key per bucket: ``{"series": [{"key", "total", "points": [[bucket, n], ...]}]}``."""
    minutes = EventCount.objects.filter(
        interval=EventCount.Interval.MINUTE, dimension=group_by, bucket__gte=since, bucket__lt=until
    )
    totals: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
    if interval == EventCount.Interval.MINUTE:
        rows = minutes.values("key", "bucket").annotate(n=Sum("count")).values_list("key", "bucket", "n")
    else:
        since = since.replace(minute=0, second=0, microsecond=0)
        boundary = rolled_up_until()
        rows = []
        if boundary is not None:
            rows += list(
                EventCount.objects.filter(
                    interval=EventCount.Interval.HOUR,
                    dimension=group_by,
                    bucket__gte=since,
                    bucket__lt=min(until, boundary),
                )
                .values("key", "bucket")
                .annotate(n=Sum("count"))
                .values_list("key", "bucket", "n")
            )
            minutes = minutes.filter(bucket__gte=boundary)
        rows += list(
            minutes.annotate(hour=TruncHour("bucket"))
            .values("key", "hour")
            .annotate(n=Sum("count"))
            .values_list("key", "hour", "n")
        )
    for key, bucket, n in rows:
        totals[key][bucket] += n
    series = [
        {
            "key": key,
            "total": sum(points.values()),
            "points": [
                [bucket.isoformat().replace("+00:00", "Z"), n] for bucket, n in sorted(points.items())
            ],
        }
        for key, points in totals.items()
    ]
    series.sort(key=lambda s: (-s["total"], s["key"]))
    return {"group_by": group_by, "interval": interval, "series": series}


def deliveries(
    *, subscription: Subscription | None = None, event_id: int | None = None
) -> QuerySet[Delivery]:
    queryset = Delivery.objects.select_related("subscription", "event")
    if subscription is not None:
        queryset = queryset.filter(subscription=subscription)
    if event_id is not None:
        queryset = queryset.filter(event_id=event_id)
    return queryset
