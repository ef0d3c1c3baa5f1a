"""History: monthly uptime from the stored flips, stats downsampling, retention.

Uptime of a month is the share of the month's known time (since the check or service was first
seen, never the future) not spent down: critical for a check, degraded for a service.  Time
before the first flip counts in the state that flip left.

Nodes that reported ``STOPPED`` more than ``MONITOR_STOPPED_NODES_KEPT_DAYS`` ago are removed with
their checks: every restart of an SDK process is a new node, so stopped ones would pile up.

Stats samples are kept raw for ``MONITOR_STATS_RAW_HOURS``, then as one sample per minute for
``MONITOR_STATS_MINUTE_DAYS``, then one per hour (averages of the gauges, sums of the counts;
the per-endpoint detail stays with the raw samples).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Max, QuerySet, Sum
from django.db.models.functions import TruncHour, TruncMinute

from monitor_app.models import Check, Flip, NodeStatus, ServiceHealth, StatSample

DOWN = {"critical", "degraded"}
KNOWN = {"passing", "warning", "critical", "healthy", "degraded"}


def month_starts(now: datetime, months: int) -> list[datetime]:
    first = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [first]
    for _ in range(months - 1):
        previous = (starts[-1] - timedelta(days=1)).replace(day=1)
        starts.append(previous)
    return starts[::-1]


def uptime(
    flips: list[Flip], *, current: str, since: datetime | None, now: datetime, months: int = 3
) -> list[dict[str, Any]]:
    """Per month: the share of known time not down (None when nothing is known of it)."""
    ordered = sorted(flips, key=lambda flip: (flip.at, flip.pk))
    # the timeline: (from, state) segments
    first_state = ordered[0].old if ordered else current
    segments: list[tuple[datetime, str]] = [(since or (ordered[0].at if ordered else now), first_state)]
    segments += [(flip.at, flip.new) for flip in ordered]
    answer = []
    starts = month_starts(now, months)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else min(now, (start + timedelta(days=32)).replace(day=1))
        known = down = 0.0
        for j, (at, state) in enumerate(segments):
            until = segments[j + 1][0] if j + 1 < len(segments) else now
            lo, hi = max(at, start), min(until, end)
            if hi <= lo or state not in KNOWN:
                continue
            seconds = (hi - lo).total_seconds()
            known += seconds
            if state in DOWN:
                down += seconds
        answer.append(
            {
                "month": start.strftime("%Y-%m"),
                "uptime": None if not known else round(100.0 * (known - down) / known, 4),
                "known_seconds": round(known, 1),
                "down_seconds": round(down, 1),
            }
        )
    return answer


def check_uptime(check: Any, *, now: datetime, months: int = 3) -> list[dict[str, Any]]:
    since = now - timedelta(days=31 * months + 1)
    flips = list(check.flips.filter(at__gte=since).order_by("at"))
    before = check.flips.filter(at__lt=since).order_by("-at").first()
    if before is not None:
        flips.insert(0, before)
    return uptime(flips, current=check.status, since=check.created, now=now, months=months)


def service_uptime(name: str, *, now: datetime, months: int = 3) -> list[dict[str, Any]]:
    health = ServiceHealth.objects.filter(name=name).first()
    current = health.status if health else "unknown"
    flips = list(Flip.objects.filter(service=name, check_ref__isnull=True).order_by("at"))
    since = flips[0].at if flips else None
    return uptime(flips, current=current, since=since, now=now, months=months)


def stat_buckets(rows: QuerySet[StatSample], trunc: Any) -> QuerySet:
    """``rows`` merged per service, node and ``trunc`` bucket of their time (``bucket``): gauges
    averaged, runtime and threads at their largest, counts summed. The downsampling task stores
    these; a read of a long window merges the finer rows the task has not reached yet."""
    return (
        rows.annotate(bucket=trunc("at"))
        .values("service", "node", "bucket")
        .annotate(
            cpu=Avg("cpu"),
            memory=Avg("memory"),
            disk=Avg("disk"),
            runtime=Max("runtime"),
            threads=Max("threads"),
            samples=Sum("samples"),
            seconds=Sum("seconds"),
            requests=Sum("requests"),
            errors=Sum("errors"),
            dropped=Sum("dropped"),
        )
        .order_by()
    )


def _rollup(source: str, target: str, older_than: datetime, trunc: Any) -> int:
    rows = stat_buckets(StatSample.objects.filter(resolution=source, at__lt=older_than), trunc)
    merged = [
        StatSample(
            service=row["service"],
            node=row["node"],
            resolution=target,
            at=row["bucket"],
            samples=row["samples"] or 0,
            cpu=row["cpu"],
            memory=row["memory"],
            disk=row["disk"],
            runtime=row["runtime"],
            threads=row["threads"],
            seconds=row["seconds"] or 0,
            requests=row["requests"] or 0,
            errors=row["errors"] or 0,
            dropped=row["dropped"] or 0,
        )
        for row in rows
    ]
    with transaction.atomic():
        StatSample.objects.filter(resolution=source, at__lt=older_than).delete()
        StatSample.objects.bulk_create(merged, batch_size=500)
    return len(merged)


def stats_downsample(*, now: datetime) -> dict[str, int]:
    """Raw samples past their hours become minutes, minutes past their days become hours; hours
    past theirs are dropped.  A bucket cut by the boundary is merged in two rows, not lost."""
    raw_until = (now - timedelta(hours=settings.MONITOR_STATS_RAW_HOURS)).replace(second=0, microsecond=0)
    minute_until = (now - timedelta(days=settings.MONITOR_STATS_MINUTE_DAYS)).replace(
        minute=0, second=0, microsecond=0
    )
    minutes = _rollup(StatSample.Resolution.RAW, StatSample.Resolution.MINUTE, raw_until, TruncMinute)
    hours = _rollup(StatSample.Resolution.MINUTE, StatSample.Resolution.HOUR, minute_until, TruncHour)
    dropped = StatSample.objects.filter(
        resolution=StatSample.Resolution.HOUR, at__lt=now - timedelta(days=settings.MONITOR_STATS_HOUR_DAYS)
    ).delete()[0]
    return {"minutes": minutes, "hours": hours, "dropped": dropped}


def flips_purge(*, now: datetime) -> int:
    return Flip.objects.filter(at__lt=now - timedelta(days=settings.MONITOR_FLIPS_KEPT_DAYS)).delete()[0]


def stopped_nodes_purge(*, now: datetime, limit: int = 1000) -> int:
    """Remove up to ``limit`` nodes stopped before the retention, with their checks (and so the
    checks' flips); the service's own flips stay.  A node that reported again meanwhile is no
    longer stopped and stays.  How many nodes went."""
    from monitor_app.services import health, ingest

    cutoff = now - timedelta(days=settings.MONITOR_STOPPED_NODES_KEPT_DAYS)
    stopped = NodeStatus.objects.filter(status=NodeStatus.Status.STOPPED, reported__lt=cutoff)
    removed, services = 0, set()
    for service, node in stopped.values_list("service", "node")[:limit]:
        with transaction.atomic():
            if not stopped.select_for_update().filter(service=service, node=node).exists():
                continue  # it came back since
            checks = Check.objects.filter(service=service, node=node, kind=Check.Kind.REPORT)
            names = checks.values_list("name", flat=True)
            keys = [ingest.snapshot_key(service, node, name) for name in names]
            keys.append(f"{ingest.STATUS_PREFIX}{service}/{node}")
            checks.delete()
            NodeStatus.objects.filter(service=service, node=node).delete()
            transaction.on_commit(lambda keys=keys: ingest.cache.delete_many(keys))
        removed += 1
        services.add(service)
    for service in sorted(services):
        with transaction.atomic():
            health.service_refresh(name=service, now=now.timestamp())
    return removed
