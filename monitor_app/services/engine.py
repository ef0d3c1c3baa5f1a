"""The state engine: how a result moves a check, and how a move is stored (compare-and-set).

:func:`evaluate` is pure: from a check's state and one reported state it gives the fields that
change and the flip, if any (thresholds with Consul's names, the failure rate, flap detection).
:func:`check_apply` stores that with a compare-and-set update on the check's ``version``: of
several workers applying to the same version one wins, the others reload and evaluate again, so
a transition is stored exactly once.  A flip writes its ``Flip`` row, decides the alert
(:mod:`.alerts`) and recomputes the service's health, all in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.db.models import F

from monitor_app.models import Check, Flip, State

log = logging.getLogger(__name__)

PASSING, WARNING, CRITICAL, UNKNOWN = State.PASSING, State.WARNING, State.CRITICAL, State.UNKNOWN
#: The original contract's states, mapped to Consul's.
ALIASES = {"OK": PASSING, "ERROR": CRITICAL, "UNKNOWN": UNKNOWN, "WARNING": WARNING, "CRITICAL": CRITICAL}
MAX_ATTEMPTS = 4
#: Attempts after this many lost races read the row under a lock (the next one cannot lose).
LOCK_AFTER = 2


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass
class Move:
    """What one result does to a check: the fields to store and the flip (old, new) if any."""

    changes: dict[str, Any] = field(default_factory=dict)
    flip: tuple[str, str] | None = None
    flapping_started: bool = False


#: The definition fields :func:`evaluate` reads: a result that changes them is judged by the new ones.
RULE_FIELDS = frozenset({"failures_before_critical", "success_before_passing", "failure_rate", "flap"})


def evaluate(state: Any, reported: str, *, now: float) -> Move:
    """The effect of one reported state on a check (``state`` has the check's fields).

    Non-passing results count as failures: after ``failures_before_critical`` in a row the check
    takes the reported state (warning or critical); after ``success_before_passing`` passing
    results in a row it passes again.  A check never seen before takes its first result as it is.
    With ``failure_rate`` the check is critical whenever the share of failures in the window
    reaches the threshold (over at least ``min_samples`` results), even without N in a row.
    Counters are capped at their thresholds, so a steady check's state does not change at all.
    """
    move = Move()
    changes = move.changes
    cap_failures = max(int(state.failures_before_critical), 1)
    cap_successes = max(int(state.success_before_passing), 1)
    failures, successes = state.failures, state.successes
    if reported == PASSING:
        failures, successes = 0, min(successes + 1, cap_successes)
    elif reported != UNKNOWN:
        failures, successes = min(failures + 1, cap_failures), 0
    if (failures, successes) != (state.failures, state.successes):
        changes["failures"], changes["successes"] = failures, successes
    if state.reported != reported:
        changes["reported"] = reported
    rate_failed = False
    rule = state.failure_rate
    if rule and reported != UNKNOWN:
        samples = [s for s in state.samples if s[0] > now - float(rule["window"])]
        samples.append([round(now, 3), reported == PASSING])
        changes["samples"] = samples
        failed = sum(1 for s in samples if not s[1])
        rate_failed = len(samples) >= int(rule.get("min_samples", 1)) and failed / len(samples) >= float(
            rule["threshold"]
        )
    status = state.status
    if reported == UNKNOWN:
        target = status
    elif status == UNKNOWN:
        target = CRITICAL if rate_failed else reported
    elif rate_failed:
        target = CRITICAL
    elif reported == PASSING:
        target = PASSING if successes >= cap_successes else status
    else:
        target = reported if failures >= cap_failures else status
    if target != status:
        move.flip = (status, target)
        if status != UNKNOWN:  # a check's first state is no flap
            move.flapping_started = flap_transition(state, changes, now)
    return move


def flap_transition(state: Any, changes: dict[str, Any], now: float) -> bool:
    """Count a flip in the flap window; True if the check starts flapping with it."""
    rule = state.flap
    if not rule:
        return False
    window = float(rule["window"])
    transitions = [t for t in state.transitions if t > now - window]
    transitions.append(round(now, 3))
    changes["transitions"] = transitions
    if not state.flapping and len(transitions) > int(rule["max_transitions"]):
        changes["flapping"] = True
        return True
    return False


@dataclass
class Applied:
    """The stored outcome of one result: the check after it, and the flip written (if any)."""

    check: Check
    flip: Flip | None
    alerts: list[Any] = field(default_factory=list)


def check_apply(
    *,
    check: Check,
    reported: str,
    now: float,
    reason: str = "reported",
    extra: dict[str, Any] | None = None,
    reload: bool = False,
) -> Applied:
    """Apply one reported state (and ``extra`` fields: output, deadline...) with compare-and-set.

    ``check`` is the row as the caller last read it; when another writer changed it meanwhile
    the update matches no row and the check is read again and the result evaluated again.
    """
    from monitor_app.services import alerts, health

    for attempt in range(MAX_ATTEMPTS):
        with transaction.atomic():
            if attempt >= LOCK_AFTER:  # a hot check: wait for its row instead of racing for it
                check = Check.objects.select_for_update().get(pk=check.pk)
            elif reload:
                check = Check.objects.get(pk=check.pk)
            for name, value in (extra or {}).items():  # a result is judged by the rules it brings
                if name in RULE_FIELDS:
                    setattr(check, name, value)
            move = evaluate(check, reported, now=now)
            changes = {**move.changes, **(extra or {})}
            # a report's new remind_every moves the reminder of a failure alerted already
            alerts.reminder_moved(changes, check, down=check.status == CRITICAL, now=now)
            if move.flip:
                changes["status"] = move.flip[1]
                changes["changed"] = to_datetime(now)
            updated = Check.objects.filter(pk=check.pk, version=check.version).update(
                **changes, version=F("version") + 1
            )
            if not updated:
                reload = True
                continue
            for name, value in changes.items():
                setattr(check, name, value)
            check.version += 1
            flip = None
            raised: list[Any] = []
            if move.flip:
                flip, raised = record_flip(
                    check,
                    old=move.flip[0],
                    new=move.flip[1],
                    reason=reason,
                    now=now,
                    flapping_started=move.flapping_started,
                )
                health.service_refresh(name=check.service, now=now)
            alerts.after_commit(check, flip, raised)
        return Applied(check, flip, raised)
    raise RuntimeError(f"check {check.pk} kept changing under {MAX_ATTEMPTS} attempts")


def record_flip(
    check: Check, *, old: str, new: str, reason: str, now: float, flapping_started: bool = False
) -> tuple[Flip, list[Any]]:
    """Store a check's flip and the alerts it raises (inside the caller's transaction)."""
    from monitor_app.services import alerts

    flip = Flip.objects.create(
        check_ref=check,
        service=check.service,
        node=check.node,
        name=check.name,
        old=old,
        new=new,
        reason=reason,
        output=check.output,
        at=to_datetime(now),
    )
    raised = alerts.on_check_flip(check, flip, now=now, flapping_started=flapping_started)
    return flip, raised


def check_expire(*, check: Check, now: float, reason: str, refresh: bool = True) -> Applied | None:
    """A check past its deadline goes critical (at once: a missed deadline is not a result).

    Compare-and-set on the version and the deadline itself: of two loops moving the same check,
    one stores the flip, the other's update matches nothing.  None when it lost that race.
    ``refresh=False`` leaves the service's health to the caller (who expires several of its
    checks and refreshes it once, in the same transaction)."""
    from monitor_app.services import alerts, health

    deadline = to_datetime(now)
    changes: dict[str, Any] = {"expires_at": None}
    flip_to = None
    if check.status != CRITICAL:
        flip_to = CRITICAL
        changes.update(
            status=CRITICAL,
            changed=deadline,
            failures=max(int(check.failures_before_critical), 1),
            successes=0,
            output=f"{reason}: no {'report' if check.kind == Check.Kind.REPORT else 'ping'} in time",
            truncated=False,
        )
    with transaction.atomic():
        updated = Check.objects.filter(pk=check.pk, version=check.version, expires_at__lte=deadline).update(
            **changes, version=F("version") + 1
        )
        if not updated:
            return None
        old = check.status
        for name, value in changes.items():
            setattr(check, name, value)
        check.version += 1
        if flip_to is None:
            return Applied(check, None)
        move_changes: dict[str, Any] = {}
        started = flap_transition(check, move_changes, now)
        if move_changes:
            Check.objects.filter(pk=check.pk).update(**move_changes)
            for name, value in move_changes.items():
                setattr(check, name, value)
        flip, raised = record_flip(
            check, old=old, new=CRITICAL, reason=reason, now=now, flapping_started=started
        )
        if refresh:
            health.service_refresh(name=check.service, now=now)
        alerts.after_commit(check, flip, raised)
    return Applied(check, flip, raised)
