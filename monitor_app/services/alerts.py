"""Alerts: which flips raise an event, the outbox they are published from, reminders, silences.

A check going critical raises ``monitor.check.failed`` unless a maintenance window covers it or
its service, a check it depends on is down, or it is flapping (then ``monitor.check.flapping``
once, when it starts); going back to passing after a failed alert raises
``monitor.check.recovered``.  A silenced failure is not forgotten: when the silence ends and the
check is still critical, the state loop raises it then (:func:`alerts_reconcile`).  Services
raise ``monitor.service.degraded`` and ``monitor.service.recovered`` the same way.

Alerts are rows (``Alert``) written in the flip's transaction; after commit they are published
through the events service (``event_app.services.event_publish``, the alert's id as the event
id), and the state loop publishes any left behind (a crash between commit and publish), so an
alert is published at least once and stored as an event exactly once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from event_app.services import event_publish
from monitor_app.models import Alert, Check, Flip, Maintenance, NodeStatus, ServiceHealth, State
from platformsite import live

log = logging.getLogger(__name__)

SOURCE = "/platform/monitor"
LIVE_GROUP = "monitor.live"
FAILED, RECOVERED, FLAPPING = "monitor.check.failed", "monitor.check.recovered", "monitor.check.flapping"
DEGRADED, SERVICE_RECOVERED = "monitor.service.degraded", "monitor.service.recovered"
#: Alerts still unpublished this long after they were written are published by the state loop.
OUTBOX_GRACE_SECONDS = 2.0


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- silences ------------------------------------------------------------------------------------


def in_maintenance(service: str, check_id: Any = None, *, now: float) -> bool:
    at = to_datetime(now)
    scope = Q(check_ref__isnull=True) | Q(check_ref=check_id) if check_id else Q(check_ref__isnull=True)
    return Maintenance.objects.filter(scope, service=service, starts__lte=at, ends__gt=at).exists()


def parents_down(check: Check) -> list[str]:
    """The checks ``check`` depends on that are critical now."""
    refs = [ref.split("/", 2) for ref in check.depends_on or () if ref.count("/") == 2]
    if not refs:
        return []
    match = Q()
    for service, node, name in refs:
        match |= Q(service=service, node=node, name=name)
    # a check naming itself is no parent: it would silence its own failures for good
    parents = Check.objects.filter(match, status=State.CRITICAL).exclude(pk=check.pk)
    return [str(parent) for parent in parents]


def silence(check: Check, *, now: float) -> str:
    """Why a failure of ``check`` should not alert now ('' when it should)."""
    if check.flapping:
        return "flapping"
    if in_maintenance(check.service, check.pk, now=now):
        return "maintenance"
    if parents_down(check):
        return "dependency"
    return ""


# --- raising ---------------------------------------------------------------------------------------


def check_data(check: Check, **extra: Any) -> dict[str, Any]:
    return {
        "check": str(check.pk),
        "service": check.service,
        "node": check.node,
        "name": check.name,
        "status": check.status,
        "output": check.output,
        **extra,
    }


def _raise(type_: str, subject: str, data: dict[str, Any], now: float, flip: Flip | None = None) -> Alert:
    return Alert.objects.create(type=type_, subject=subject, data=data, flip=flip, created=to_datetime(now))


def on_check_flip(check: Check, flip: Flip, *, now: float, flapping_started: bool = False) -> list[Alert]:
    """The alerts a stored flip raises (inside its transaction); marks the flip and the check."""
    raised: list[Alert] = []
    updates: dict[str, Any] = {}
    data = check_data(check, old=flip.old, new=flip.new, reason=flip.reason, at=iso(flip.at))
    if flapping_started:
        raised.append(_raise(FLAPPING, str(check.pk), data, now, flip))
        flip.alert = FLAPPING
    if flip.new == State.CRITICAL:
        why = silence(check, now=now)
        if why:
            flip.suppressed = why
        else:
            raised.append(_raise(FAILED, str(check.pk), data, now, flip))
            flip.alert = FAILED
            updates["alerting"] = True
            if check.remind_every:
                updates["next_reminder_at"] = to_datetime(now + check.remind_every)
    elif flip.new == State.PASSING and check.alerting:
        if check.flapping:
            flip.suppressed = "flapping"
        else:
            raised.append(_raise(RECOVERED, str(check.pk), data, now, flip))
            flip.alert = RECOVERED
            updates.update(alerting=False, next_reminder_at=None)
    if flip.alert or flip.suppressed:
        Flip.objects.filter(pk=flip.pk).update(alert=flip.alert, suppressed=flip.suppressed)
    if updates:
        Check.objects.filter(pk=check.pk).update(**updates)
        for name, value in updates.items():
            setattr(check, name, value)
    return raised


def service_silence(service: str, *, now: float) -> str:
    """Why a service's degradation is not alerted now ("" when it is): a maintenance window, or
    every failing check that counts is flapping (its own alerts are held, so are the service's:
    a flapping check flipped the service with it, and raised degraded and recovered each time)."""
    if in_maintenance(service, now=now):
        return "maintenance"
    failing = Check.objects.filter(service=service, status=State.CRITICAL, critical=True)
    flapping = list(failing.values_list("flapping", flat=True)[:1000])
    return "flapping" if flapping and all(flapping) else ""


def on_service_flip(health: ServiceHealth, flip: Flip, *, now: float) -> list[Alert]:
    data = {
        "service": health.name,
        "status": health.status,
        "old": flip.old,
        "nodes": health.nodes,
        "passing": health.passing,
        "at": iso(flip.at),
    }
    if health.status == ServiceHealth.Status.DEGRADED:
        why = service_silence(health.name, now=now)
        if why:
            flip.suppressed = why
            Flip.objects.filter(pk=flip.pk).update(suppressed=flip.suppressed)
            return []
        health.alerting = True
        following = to_datetime(now + health.remind_every) if health.remind_every else None
        ServiceHealth.objects.filter(pk=health.pk).update(alerting=True, next_reminder_at=following)
        flip.alert = DEGRADED
    elif health.alerting:  # healthy again, or unknown (its last nodes stopped): the alert is
        # resolved either way, so an incident opened on it closes; ``status`` says which
        health.alerting = False
        ServiceHealth.objects.filter(pk=health.pk).update(alerting=False, next_reminder_at=None)
        flip.alert = SERVICE_RECOVERED
    else:
        return []
    Flip.objects.filter(pk=flip.pk).update(alert=flip.alert)
    return [_raise(flip.alert, health.name, data, now, flip)]


# --- publishing ------------------------------------------------------------------------------------


def after_commit(check: Check, flip: Flip | None, raised: list[Alert]) -> None:
    """Once the transaction commits: refresh the check's cached state, publish, push live."""
    from monitor_app.services import ingest

    ids = [alert.pk for alert in raised]
    snapshot = ingest.snapshot_of(check)
    live = flip_data(flip) if flip is not None else None

    if not check.node:  # a job: its pings read it from the cache
        from monitor_app.services.jobs import job_forget

        job_forget(check.pk)

    def done() -> None:
        ingest.store_snapshot(check.service, check.node, check.name, snapshot)
        if ids:
            alerts_publish(ids=ids)
        if live is not None:
            push({"type": "flip", "flip": live})

    transaction.on_commit(done)


def flip_data(flip: Flip) -> dict[str, Any]:
    return {
        "id": flip.pk,
        "check": str(flip.check_ref_id) if flip.check_ref_id else None,
        "service": flip.service,
        "node": flip.node,
        "name": flip.name,
        "old": flip.old,
        "new": flip.new,
        "reason": flip.reason,
        "output": flip.output,
        "at": iso(flip.at),
        "alert": flip.alert,
        "suppressed": flip.suppressed,
    }


def alerts_publish(*, ids: list[Any] | None = None, now: float | None = None, limit: int = 500) -> int:
    """Publish the given alerts (or every one left unpublished for a while); the count published."""
    pending = Alert.objects.filter(published_at=None)
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    else:
        stamp = now if now is not None else timezone.now().timestamp()
        pending = pending.filter(created__lte=to_datetime(stamp - OUTBOX_GRACE_SECONDS))
    published = 0
    for alert in pending.order_by("created")[:limit]:
        try:
            event_publish(
                type=alert.type,
                source=SOURCE,
                subject=alert.subject,
                data=alert.data,
                event_id=str(alert.pk),
                time=alert.created,
            )
        except Exception:
            log.exception("monitor: could not publish an alert", extra={"type": alert.type})
            continue
        Alert.objects.filter(pk=alert.pk).update(published_at=timezone.now())
        published += 1
    return published


def push(message: dict[str, Any]) -> None:
    """Send a live message to the monitor's websocket watchers, after the commit that made it:
    best effort, waiting at most ``PLATFORM_REDIS_TIMEOUT`` and not at all while Redis is known
    down (a failure is logged, never raised)."""
    live.notify(LIVE_GROUP, {"type": "monitor.live", "message": message})


# --- the state loop's alert work -------------------------------------------------------------------


def reminder_moved(changes: dict[str, Any], row: Check | ServiceHealth, *, down: bool, now: float) -> None:
    """Settings ``changes`` that give a failure (or a degradation) alerted already, ``row`` when
    ``down``, a new ``remind_every`` also move its next reminder: the new period from ``now`` on,
    none for 0.  Every way of setting it (an operator's edit, a node's report) comes here."""
    every = changes.get("remind_every", row.remind_every)
    if down and row.alerting and every != row.remind_every:
        changes["next_reminder_at"] = to_datetime(now + every) if every else None


def reminders_due(*, now: float, limit: int = 500) -> int:
    """Remind of checks still failing: ``monitor.check.failed`` again, ``reminder: true``."""
    at = to_datetime(now)
    sent = 0
    for check in Check.objects.filter(next_reminder_at__lte=at)[:limit]:
        with transaction.atomic():
            if (
                check.status != State.CRITICAL
                or not check.alerting
                or not check.remind_every
                or node_stopped(check)
            ):
                Check.objects.filter(pk=check.pk).update(next_reminder_at=None)
                continue
            following = at + timedelta(seconds=check.remind_every)
            updated = Check.objects.filter(pk=check.pk, next_reminder_at=check.next_reminder_at).update(
                next_reminder_at=following
            )
            if not updated or silence(check, now=now):
                continue
            alert = _raise(
                FAILED, str(check.pk), check_data(check, reminder=True, since=iso(check.changed)), now
            )
            transaction.on_commit(lambda ids=[alert.pk]: alerts_publish(ids=ids))
            sent += 1
    return sent


def node_stopped(check: Check) -> bool:
    """Whether the check's node reported STOPPED (a failure it had is not reminded of until the
    node is back, whatever set its reminder meanwhile: an operator's new ``remind_every``)."""
    return NodeStatus.objects.filter(
        service=check.service, node=check.node, status=NodeStatus.Status.STOPPED
    ).exists()


def service_data(health: ServiceHealth, **extra: Any) -> dict[str, Any]:
    return {
        "service": health.name,
        "status": health.status,
        "nodes": health.nodes,
        "passing": health.passing,
        "since": iso(health.changed),
        **extra,
    }


def service_reminders_due(*, now: float, limit: int = 500) -> int:
    """Remind of services still degraded: ``monitor.service.degraded`` again, ``reminder: true``."""
    at = to_datetime(now)
    sent = 0
    for health in ServiceHealth.objects.filter(next_reminder_at__lte=at)[:limit]:
        with transaction.atomic():
            degraded = health.status == ServiceHealth.Status.DEGRADED and health.alerting
            following = (
                at + timedelta(seconds=health.remind_every) if degraded and health.remind_every else None
            )
            if not ServiceHealth.objects.filter(
                pk=health.pk, next_reminder_at=health.next_reminder_at
            ).update(next_reminder_at=following):
                continue
            if following is None or in_maintenance(health.name, now=now):
                continue
            alert = _raise(DEGRADED, health.name, service_data(health, reminder=True), now)
            transaction.on_commit(lambda ids=[alert.pk]: alerts_publish(ids=ids))
            sent += 1
    return sent


def services_reconcile(*, now: float, limit: int = 500) -> int:
    """A degradation a maintenance window or flapping checks held back, raised once the window
    is over or the flapping has calmed down."""
    raised = 0
    for health in ServiceHealth.objects.filter(status=ServiceHealth.Status.DEGRADED, alerting=False)[:limit]:
        if service_silence(health.name, now=now):
            continue
        with transaction.atomic():
            following = to_datetime(now + health.remind_every) if health.remind_every else None
            if not ServiceHealth.objects.filter(
                pk=health.pk, alerting=False, status=ServiceHealth.Status.DEGRADED
            ).update(alerting=True, next_reminder_at=following):
                continue
            alert = _raise(DEGRADED, health.name, service_data(health, released=True), now)
            transaction.on_commit(lambda ids=[alert.pk]: alerts_publish(ids=ids))
            raised += 1
    return raised


def alerts_reconcile(*, now: float, limit: int = 500) -> int:
    """Alerts a silence held back: flapping that calmed down, maintenance that ended, a parent
    that recovered.  A critical check that should alert and has not is raised now; a passing one
    still marked alerting (its recovery was held while it flapped) recovers."""
    raised = 0
    for check in Check.objects.filter(flapping=True)[:limit]:
        window = float((check.flap or {}).get("window", 0))
        if check.transitions and check.transitions[-1] > now - window:
            continue
        with transaction.atomic():
            if Check.objects.filter(pk=check.pk, version=check.version).update(
                flapping=False, transitions=[]
            ):
                check.flapping = False
    stuck = Check.objects.filter(
        Q(status=State.CRITICAL, alerting=False, flapping=False)
        | Q(status=State.PASSING, alerting=True, flapping=False)
    )
    for check in stuck.order_by("changed")[:limit]:
        if check.status == State.CRITICAL and silence(check, now=now):
            continue
        with transaction.atomic():
            alerting = check.status == State.CRITICAL
            updates: dict[str, Any] = {"alerting": alerting}
            if alerting and check.remind_every:
                updates["next_reminder_at"] = to_datetime(now + check.remind_every)
            elif not alerting:
                updates["next_reminder_at"] = None
            if not Check.objects.filter(pk=check.pk, version=check.version, alerting=not alerting).update(
                **updates
            ):
                continue
            extra = {"released": True, "since": iso(check.changed)}
            alert = _raise(FAILED if alerting else RECOVERED, str(check.pk), check_data(check, **extra), now)
            transaction.on_commit(lambda ids=[alert.pk]: alerts_publish(ids=ids))
            raised += 1
    return raised
