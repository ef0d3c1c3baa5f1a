"""Operators' writes: check settings, maintenance windows, service health settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from monitor_app.models import Check, Maintenance, ServiceHealth, State
from monitor_app.services import alerts, health, ingest, jobs, reports
from platformsite.api.errors import Invalid

#: Fields an operator may change on a check (a node's report may set its own again).
EDITABLE = (*reports.DEFINITION, "schedule", "timezone")
#: Settings whose null means "none" (no failure-rate rule, no flap detection): any other null is a 400.
CLEARABLE = frozenset({"failure_rate", "flap"})


@transaction.atomic
def check_update(*, check: Check, fields: dict[str, Any], now: float) -> Check:
    """Change a check's settings (thresholds, deadlines, dependencies, schedule)."""
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise Invalid(
            f"Not settable: {', '.join(unknown)}.", code="invalid_field", details={"fields": unknown}
        )
    reports.nulls_refused(fields, "check", nullable=CLEARABLE)
    changes = reports.parse_definition(fields, "check")
    changes.update({key: None for key in CLEARABLE if key in fields and fields[key] is None})
    if "schedule" in fields or "timezone" in fields:
        if check.kind != Check.Kind.CRON:
            given = "check.schedule" if "schedule" in fields else "check.timezone"
            raise Invalid(
                "Only a cron job has a schedule.",
                code="invalid_schedule",
                details={given: f"A {check.kind} check has no schedule."},
            )
        changes["schedule"], changes["timezone"] = jobs.parse_schedule(
            fields.get("schedule", check.schedule), fields.get("timezone", check.timezone)
        )
    if "interval" in fields and check.kind == Check.Kind.CRON:  # its schedule says when it pings
        raise jobs.interval_refused()
    if (
        changes.get("ttl", check.ttl) < changes.get("interval", check.interval)
        and check.kind == Check.Kind.REPORT
    ):
        raise Invalid(
            "ttl: At least the interval.", code="invalid_report", details={"ttl": "At least the interval."}
        )
    alerts.reminder_moved(changes, check, down=check.status == State.CRITICAL, now=now)
    Check.objects.filter(pk=check.pk).update(**changes, version=F("version") + 1)
    check.refresh_from_db()
    if check.kind != Check.Kind.REPORT and check.expires_at is not None and check.last_report is not None:
        Check.objects.filter(pk=check.pk).update(
            expires_at=jobs.next_deadline(check, check.last_report.timestamp())
        )
        check.refresh_from_db()
    alerts.after_commit(check, None, [])
    return check


@transaction.atomic
def check_delete(*, check: Check, now: float) -> None:
    service, node, name = check.service, check.node, check.name
    jobs.job_forget(check.pk)
    check.delete()
    ingest.cache.delete(ingest.snapshot_key(service, node, name))
    health.service_refresh(name=service, now=now)


def maintenance_create(
    *, service: str, check: Check | None, starts: datetime, ends: datetime, reason: str, actor: str
) -> Maintenance:
    if ends <= starts:
        raise Invalid("ends must be after starts.", code="invalid_window", details={"ends": "After starts."})
    return Maintenance.objects.create(
        service=service,
        check_ref=check,
        starts=starts,
        ends=ends,
        reason=reason[:500],
        created_by=actor[:200],
    )


def maintenance_end(*, window: Maintenance, now: datetime) -> Maintenance:
    """End a window now (one in the future is cancelled: its end becomes its start)."""
    window.ends = max(min(window.ends, now), window.starts)
    window.save(update_fields=["ends"])
    return window


@transaction.atomic
def service_settings(*, name: str, fields: dict[str, Any], now: float) -> ServiceHealth:
    """A service's own healthy share (``min_share``, null: the default) and ``remind_every``."""
    unknown = sorted(set(fields) - {"min_share", "remind_every"})
    if unknown:
        raise Invalid(
            f"Not settable: {', '.join(unknown)}.", code="invalid_field", details={"fields": unknown}
        )
    changes: dict[str, Any] = {}
    if "min_share" in fields:
        share = fields["min_share"]
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1
        ):
            raise Invalid("min_share is a share above 0 and at most 1.", code="invalid_share")
        changes["min_share"] = share
    if "remind_every" in fields:
        every = fields["remind_every"]
        if isinstance(every, bool) or not isinstance(every, int) or not 0 <= every <= 86400 * 31:
            raise Invalid("remind_every is 0 to 2,678,400 seconds.", code="invalid_remind_every")
        changes["remind_every"] = every
    health_row, _ = ServiceHealth.objects.get_or_create(name=name)
    degraded = health_row.status == ServiceHealth.Status.DEGRADED
    alerts.reminder_moved(changes, health_row, down=degraded, now=now)  # a degradation alerted already
    ServiceHealth.objects.filter(pk=health_row.pk).update(**changes)
    health.service_refresh(name=name, now=now)
    return ServiceHealth.objects.get(pk=health_row.pk)
