"""Aggregation and retention: minute counters rolled up to hours, expired events purged."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from event_app import selectors
from event_app.live import LIVE_GROUP  # noqa: F401 - re-exported
from event_app.models import Delivery, Event, EventCount
from event_app.services.publishing import _upsert_counts

log = logging.getLogger(__name__)

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
