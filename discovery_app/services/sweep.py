"""The sweep: expire nodes past their TTL, remove dead ones, flush heartbeat times, purge results."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from discovery_app import deadlines, selectors
from discovery_app.models import Node, Result
from discovery_app.services.common import (
    ALL_GROUP,
    FULL_SWEEP_KEY,
    SWEEP_LOCK_KEY,
    _Change,
    _drop_empty_services,
    _drop_heartbeats,
    _event_data,
    _events_after_commit,
    _group_send,
    _publish_event,
    _record,
    _snapshot,
    lock_services,
    to_datetime,
)

log = logging.getLogger(__name__)

# --- The sweep ----------------------------------------------------------------------------------


@dataclass
class SweepReport:
    total: int = 0
    expired: list[str] = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    flushed: int = 0
    degraded: bool = False
    skipped: bool = False


def registry_sweep(*, now: float | None = None) -> SweepReport:
    """Expire nodes past their TTL, remove nodes critical past ``deregister_after``, flush heartbeats.

    The safety valve: when more than ``DISCOVERY_VALVE_SHARE`` of all nodes are overdue (plus
    those that expired within ``DISCOVERY_VALVE_WINDOW_SECONDS``), the fault is more likely the
    platform's than the fleet's: overdue nodes are kept passing and the registry is marked
    degraded until the share drops again.  The share is computed from the registry as it is at
    each sweep.  One sweep runs at a time (a lock in the shared cache).
    """
    now = time.time() if now is None else now
    if not cache.add(SWEEP_LOCK_KEY, now, timeout=30):
        return SweepReport(skipped=True)
    try:
        last_full = cache.get(FULL_SWEEP_KEY)
        if (
            deadlines.available()
            and last_full is not None
            and 0 <= now - last_full < settings.DISCOVERY_FULL_SWEEP_SECONDS
        ):
            return _sweep_due(now)
        report = _sweep_all(now)
        cache.set(FULL_SWEEP_KEY, now, timeout=None)
        return report
    finally:
        cache.delete(SWEEP_LOCK_KEY)


def _sweep_all(now: float) -> SweepReport:
    """The full pass: every node and heartbeat entry; flushes heartbeat times, rebuilds the index."""
    rows = list(
        Node.objects.values_list(
            "id", "status", "ttl", "deregister_after", "last_heartbeat", "critical_since"
        )
    )
    report = SweepReport(total=len(rows))
    beats = selectors.last_heartbeats([row[0] for row in rows if row[1] == Node.Status.PASSING])
    overdue: list[str] = []
    flush: dict[str, float] = {}
    indexed: dict[str, float] = {}
    for node_id, status, ttl, _, last_heartbeat, _ in rows:
        if status != Node.Status.PASSING:
            continue
        stored = last_heartbeat.timestamp()
        beat = beats.get(node_id, stored)
        # Every passing node, overdue ones too: the sweeps between full passes must see the
        # nodes the valve holds, and those a batch left for the next second.
        indexed[node_id] = max(beat, stored) + ttl
        if now - max(beat, stored) > ttl:
            overdue.append(node_id)
        elif beat - stored >= settings.DISCOVERY_FLUSH_SECONDS:
            flush[node_id] = beat
    critical = [row for row in rows if row[1] != Node.Status.PASSING]
    _expire_and_remove(report, overdue, [(row[0], row[3], row[5]) for row in critical], now)
    deadlines.index(indexed)
    if flush:
        report.flushed = _flush_heartbeats(flush)
    return report


def _sweep_due(now: float) -> SweepReport:
    """The pass between full ones: only the nodes the deadline index says may be overdue, and
    the critical ones (few, unless the fleet is in trouble)."""
    report = SweepReport(total=Node.objects.count())
    candidates = deadlines.due(now)
    overdue: list[str] = []
    if candidates:
        rows = Node.objects.filter(id__in=candidates, status=Node.Status.PASSING).values_list(
            "id", "ttl", "last_heartbeat"
        )
        beats = selectors.last_heartbeats(candidates)
        renewed: dict[str, float] = {}
        for node_id, ttl, last_heartbeat in rows:
            last = max(beats.get(node_id, 0.0), last_heartbeat.timestamp())
            if now - last > ttl:
                overdue.append(node_id)
            else:  # renewed since it was indexed (or indexed by an older full pass)
                renewed[node_id] = last + ttl
        deadlines.drop(set(candidates) - set(overdue) - set(renewed))  # no longer passing
        deadlines.index(renewed)
    critical = Node.objects.exclude(status=Node.Status.PASSING).values_list(
        "id", "deregister_after", "critical_since"
    )
    _expire_and_remove(report, overdue, list(critical), now)
    return report


def _expire_and_remove(
    report: SweepReport, overdue: list[str], critical: list[tuple[str, int, datetime | None]], now: float
) -> None:
    """Expire the overdue nodes (unless the safety valve holds them), remove the long-dead ones."""
    dead: list[str] = []
    recently_expired = 0
    for node_id, deregister_after, critical_since in critical:
        since = critical_since.timestamp() if critical_since else now
        if now - since >= deregister_after:
            dead.append(node_id)
        elif now - since <= settings.DISCOVERY_VALVE_WINDOW_SECONDS:
            recently_expired += 1
    if overdue:
        overdue = _hold_or_expire(report, overdue, recently_expired, now)
    else:
        _set_degraded(None, now)
    batch = settings.DISCOVERY_SWEEP_BATCH  # a short sweep: the rest waits for the next one
    if overdue:
        report.expired = _expire(overdue[:batch], now)
    if dead:
        report.deregistered = _remove_dead(dead[:batch], now)


def _flush_heartbeats(beats: dict[str, float]) -> int:
    """Write cached heartbeat times to the database in bulk (at most DISCOVERY_FLUSH_BATCH a sweep)."""
    items = sorted(beats.items(), key=lambda item: item[1])[: settings.DISCOVERY_FLUSH_BATCH]
    if connection.vendor == "postgresql":
        # One UPDATE ... FROM (VALUES ...) per chunk: far cheaper than bulk_update's CASE WHEN.
        table = Node._meta.db_table
        with connection.cursor() as cursor:
            for start in range(0, len(items), 1000):
                chunk = items[start : start + 1000]
                values = ", ".join(["(%s, %s::timestamptz)"] * len(chunk))
                params = [value for node_id, beat in chunk for value in (node_id, to_datetime(beat))]
                cursor.execute(
                    f'UPDATE "{table}" AS n SET "last_heartbeat" = v.ts '  # noqa: S608 (no user input)
                    f"FROM (VALUES {values}) AS v(id, ts) WHERE n.id = v.id AND n.last_heartbeat < v.ts",
                    params,
                )
    else:
        Node.objects.bulk_update(
            [Node(id=node_id, last_heartbeat=to_datetime(beat)) for node_id, beat in items],
            ["last_heartbeat"],
            batch_size=500,
        )
    return len(items)


def _hold_or_expire(report: SweepReport, overdue: list[str], recently_expired: int, now: float) -> list[str]:
    """Apply the safety valve; returns the nodes to expire now."""
    total = report.total
    share = (len(overdue) + recently_expired) / total if total else 0.0
    state = selectors.degraded_state()
    tripped = total >= settings.DISCOVERY_VALVE_MIN_NODES and share > settings.DISCOVERY_VALVE_SHARE
    max_hold = settings.DISCOVERY_VALVE_MAX_HOLD_SECONDS
    if tripped and state is not None and max_hold and now - state["since"] >= max_hold:
        tripped = False  # held long enough: these nodes are really gone
    if not tripped:
        _set_degraded(None, now)
        return overdue
    report.degraded = True
    report.held = overdue
    _set_degraded({"held": len(overdue), "total": total, "share": round(share, 4)}, now)
    return []


def _set_degraded(info: dict[str, Any] | None, now: float) -> None:
    state = selectors.degraded_state()
    if info is None:
        if state is not None:
            cache.delete(selectors.DEGRADED_KEY)
            _publish_event("discovery.registry.recovered", "registry", {"since": state["since_iso"]})
            _group_send([ALL_GROUP], {"type": "discovery.registry", "degraded": False, "state": None})
        return
    since = state["since"] if state is not None else now
    new_state = {**info, "since": since, "since_iso": selectors.iso(since), "checked": selectors.iso(now)}
    cache.set(selectors.DEGRADED_KEY, new_state, timeout=None)
    if state is None:
        log.warning("discovery: registry degraded, expiry suspended", extra=info)
        _publish_event("discovery.registry.degraded", "registry", new_state)
        _group_send([ALL_GROUP], {"type": "discovery.registry", "degraded": True, "state": new_state})


def _locked(node_ids: list[str], status: str) -> list[Node]:
    """The nodes still in ``status``, locked after their services' names (the registry's lock
    order, :func:`lock_services`)."""
    names = set(Node.objects.filter(id__in=node_ids).values_list("service__name", flat=True))
    lock_services(names)
    nodes = (
        Node.objects.select_for_update()
        .select_related("service")
        .filter(id__in=node_ids, status=status)
        .order_by("id")
    )
    return [node for node in nodes if node.service.name in names]  # another name: the next sweep


@transaction.atomic
def _expire(node_ids: list[str], now: float) -> list[str]:
    nodes = _locked(node_ids, Node.Status.PASSING)
    # A heartbeat or a registration may have arrived since the sweep looked: check again.
    beats = selectors.last_heartbeats([node.id for node in nodes])
    nodes = [
        node
        for node in nodes
        if now - max(beats.get(node.id, 0.0), node.last_heartbeat.timestamp()) > node.ttl
    ]
    if not nodes:
        return []
    stamp = to_datetime(now)
    Node.objects.filter(id__in=[node.id for node in nodes]).update(
        status=Node.Status.CRITICAL, critical_since=stamp
    )
    changes = []
    for node in nodes:
        node.status, node.critical_since = Node.Status.CRITICAL, stamp
        changes.append(
            _Change(
                "update",
                node.service.name,
                node.service.version,
                _snapshot(node, node.service.version),
                "expired",
            )
        )
    _record(changes, now)
    expired = [node.id for node in nodes]
    _drop_heartbeats(expired)  # under the services' locks, as node_register sets them
    _events_after_commit(
        "discovery.node.expired",
        [(node.id, _event_data(node, node.service, ttl=node.ttl)) for node in nodes],
    )
    return expired


@transaction.atomic
def _remove_dead(node_ids: list[str], now: float) -> list[str]:
    nodes = _locked(node_ids, Node.Status.CRITICAL)
    nodes = [
        node
        for node in nodes
        if node.critical_since is None or now - node.critical_since.timestamp() >= node.deregister_after
    ]
    if not nodes:
        return []
    removed = [node.id for node in nodes]
    Node.objects.filter(id__in=removed).delete()
    _drop_empty_services({node.service_id for node in nodes})
    _record(
        [
            _Change(
                "delete",
                node.service.name,
                node.service.version,
                _snapshot(node, node.service.version),
                "critical_too_long",
            )
            for node in nodes
        ],
        now,
    )
    _drop_heartbeats(removed)
    _events_after_commit(
        "discovery.node.deregistered",
        [(node.id, _event_data(node, node.service, reason="critical_too_long")) for node in nodes],
    )
    return removed


def results_purge(*, now: float | None = None) -> int:
    """Delete watch history older than DISCOVERY_HISTORY_SECONDS."""
    now = time.time() if now is None else now
    cutoff = to_datetime(now - settings.DISCOVERY_HISTORY_SECONDS)
    return Result.objects.filter(timestamp__lt=cutoff).delete()[0]
