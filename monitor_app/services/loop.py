"""The state loop (Celery beat, every MONITOR_LOOP_SECONDS; the embedded mode's in-process beat
runs it too): buffered job pings, overdue checks, reminders, held-back alerts and the alert outbox.

Overdue checks are found by the indexed ``expires_at``.  A node check whose cached last result
is newer than its stored deadline is renewed (its column moved forward in one bulk write: this
is where unchanged results reach the database, once per TTL at most); the others go critical
with a compare-and-set update, so two loops running at once store one flip.  A job's last
steady ping, still in the ping buffer or not, renews it the same way (:mod:`pingbuffer`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from monitor_app.models import Check
from monitor_app.services import alerts, engine, health, pingbuffer
from monitor_app.services.ingest import report_key

log = logging.getLogger(__name__)


@dataclass
class Tick:
    pings: int = 0
    renewed: int = 0
    expired: int = 0
    published: int = 0
    reminded: int = 0
    released: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


#: What deciding between renewing and expiring a due check reads (the rest only for an expiry).
DUE_FIELDS = ("id", "kind", "runs", "interval", "ttl", "schedule", "timezone", "expires_at")


def checks_overdue(*, now: float, limit: int | None = None) -> tuple[int, int]:
    """Renew or expire the checks past their deadline: (renewed, expired)."""
    limit = limit or settings.MONITOR_LOOP_BATCH
    cutoff = engine.to_datetime(now)
    due = list(Check.objects.filter(expires_at__lte=cutoff).order_by("expires_at").only(*DUE_FIELDS)[:limit])
    if not due:
        return 0, 0
    reports = cache.get_many([report_key(check.pk) for check in due if not check.runs])
    renew: list[Check] = []
    late: list[Check] = []
    for check in due:
        entry = reports.get(report_key(check.pk))
        (late if entry is None or not renewable(check, entry[0], now) else renew).append(check)
    buffered = pingbuffer.buffer()
    jobs = [str(c.pk) for c in late if c.kind != Check.Kind.REPORT and not c.runs]
    if jobs and buffered is not None:  # a ping answered but not stored yet
        pinged = buffered.last_pings(jobs)
        rescued = [c for c in late if str(c.pk) in pinged and renewable(c, pinged[str(c.pk)], now)]
        renew += rescued
        late = [c for c in late if c not in rescued]
    if renew:
        deadlines_store(renew, cutoff)
    by_service: dict[str, list[Check]] = defaultdict(list)
    for check in Check.objects.filter(pk__in=[c.pk for c in late]).order_by("expires_at") if late else ():
        by_service[check.service].append(check)
    expired = sum(services_expire(name, checks, now) for name, checks in by_service.items())
    return len(renew), expired


def services_expire(service: str, checks: list[Check], now: float) -> int:
    """Expire one service's late checks and recompute its health once, in one transaction (a
    fleet-wide outage moves thousands of checks in a run: one health pass per service, not one
    per check).  A check that cannot be expired is logged and left for the next run."""
    expired = flipped = 0
    try:
        with transaction.atomic():
            for check in checks:
                reason = "expired" if check.kind == Check.Kind.REPORT else "late"
                try:
                    with transaction.atomic():
                        applied = engine.check_expire(check=check, now=now, reason=reason, refresh=False)
                except Exception:
                    log.exception("monitor: could not expire a check", extra={"check": str(check.pk)})
                    continue
                if applied is not None:
                    expired += 1
                    flipped += applied.flip is not None
            if flipped:
                health.service_refresh(name=service, now=now)
    except Exception:
        log.exception("monitor: could not expire a service's checks", extra={"service": service})
        return 0
    return expired


def deadlines_store(renew: list[Check], cutoff: Any) -> None:
    """Move the renewed checks' deadlines forward, in one statement on PostgreSQL (Django's
    ``bulk_update`` builds a CASE of one branch per row: ~0.4 ms of CPU a row, the loop's largest
    cost at 10,000 checks, and taken from the CPUs that answer the reports).  A check whose
    deadline a result moved meanwhile (no longer past ``cutoff``) is left as that result set it
    (on PostgreSQL; elsewhere the embedded mode's single process writes them one batch at a time)."""
    if connection.vendor != "postgresql":
        Check.objects.bulk_update(renew, ["expires_at"], batch_size=500)
        return
    table = Check._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS c SET expires_at = v.expires_at"  # noqa: S608 (our own table name)
            " FROM (SELECT unnest(%s::uuid[]) AS id, unnest(%s::timestamptz[]) AS expires_at) AS v"
            " WHERE c.id = v.id AND c.expires_at <= %s",
            [[c.pk for c in renew], [c.expires_at for c in renew], cutoff],
        )


def renewable(check: Check, last: float, now: float) -> bool:
    """Whether the result (or ping) at ``last`` moves the check's deadline past ``now`` (then set)."""
    deadline = renewed_deadline(check, last)
    if deadline <= now:
        return False
    check.expires_at = engine.to_datetime(deadline)
    return True


def renewed_deadline(check: Check, last: float) -> float:
    """The deadline a check's cached last result (a node's report, a job's success ping) sets."""
    if check.kind == Check.Kind.REPORT:
        return last + check.ttl
    from monitor_app.services.jobs import next_deadline

    return next_deadline(check, last).timestamp()


def monitor_tick(*, now: float) -> Tick:
    """One run of the state loop."""
    tick = Tick()
    tick.pings = pingbuffer.pings_flush(now=now)
    tick.renewed, tick.expired = checks_overdue(now=now)
    tick.reminded = alerts.reminders_due(now=now) + alerts.service_reminders_due(now=now)
    tick.released = alerts.alerts_reconcile(now=now) + alerts.services_reconcile(now=now)
    tick.published = alerts.alerts_publish(now=now)
    if cache.add("monitor:failing:refreshed", now, timeout=health.FAILING_REFRESH_SECONDS):
        health.failing_refresh_all()
    return tick


def tick_summary(tick: Tick) -> dict[str, Any]:
    return tick.as_dict()
