"""Retention: spans older than TRACE_RETENTION_DAYS (or a service's own ``retention_days``) go.

On PostgreSQL whole day partitions are dropped (the longest retention decides which), and the
spans of services kept for less are deleted in batches; on SQLite spans are deleted in batches.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from trace_app.models import KeepRule
from trace_app.store import get_store, partitions

DAY_US = 86_400 * 1_000_000


def expire_spans(now_us: int | None = None) -> int:
    now_us = now_us if now_us is not None else int(time.time() * 1_000_000)
    overrides = dict(
        KeepRule.objects.filter(retention_days__isnull=False).values_list("service", "retention_days")
    )
    default = overrides.pop("*", settings.TRACE_RETENTION_DAYS)
    longest = max([default, *overrides.values()])
    shorter = {service: now_us - days * DAY_US for service, days in overrides.items() if days < longest}
    if default < longest:  # services without a rule of their own keep the default
        ruled = set(overrides)
        for op in get_store().operations():
            if op["service"] not in ruled:
                shorter.setdefault(op["service"], now_us - default * DAY_US)
    return get_store().expire(now_us - longest * DAY_US, shorter)


def ensure_partitions() -> list[str]:
    """Today's and the next days' partitions (PostgreSQL); the names created."""
    if connection.vendor != "postgresql":
        return []
    return partitions.ensure_ahead()
