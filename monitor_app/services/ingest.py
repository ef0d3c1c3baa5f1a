"""Ingest: applying what service nodes report (check results, their status, their process
stats), once :mod:`monitor_app.services.reports` has read and checked it.

* the check's state as last stored is kept in the shared cache (its *snapshot*); a result that
  changes nothing stored (same state, counters at their caps, same definition, a deadline set)
  is only written to the cache, with its time and output, and costs no database write;
* anything else goes through the state engine's compare-and-set write
  (:func:`monitor_app.services.engine.check_apply`).

The state loop renews a deadline from the cached time of the last result (see ``loop``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from monitor_app.models import Check, NodeStatus, ServiceHealth, State, StatSample
from monitor_app.services import engine, health
from monitor_app.services.reports import DEFINITION
from platformsite import localstate
from platformsite.cache import CACHE_DOWN

log = logging.getLogger(__name__)

SNAPSHOT_PREFIX = "monitor:c:"
REPORT_PREFIX = "monitor:r:"
STATUS_PREFIX = "monitor:s:"
KNOWN_PREFIX = "monitor:k:"
#: A snapshot is read again from the database at least this often (a lost race heals by then;
#: a miss costs one read for the whole batch).
SNAPSHOT_SECONDS = 300
#: A result's cache entry outlives any TTL the loop could still need it for.
REPORT_SECONDS = 86400 * 63
#: Snapshots this process could not write after a commit (Redis down): the copy Redis holds, if it
#: kept its data (a hang, a network break), may be older than the row.  Dropped before this
#: process reads any snapshot again.
_unsure: set[str] = set()
localstate.register_cache("monitor.unsure_snapshots", size=lambda: len(_unsure), reset=_unsure.clear)
STATE_FIELDS = (
    "status",
    "reported",
    "failures",
    "successes",
    "samples",
    "transitions",
    "flapping",
    "version",
    "kind",
)


def snapshot_key(service: str, node: str, name: str) -> str:
    return f"{SNAPSHOT_PREFIX}{service}/{node}/{name}"


def report_key(check_id: Any) -> str:
    return f"{REPORT_PREFIX}{check_id}"


#: SET with a TTL of every key in one command (Django's ``set_many`` sends a MULTI of an MSET and
#: an EXPIRE per key: for a node's 10 results, 13 commands and replies, a third of a report's CPU).
_SET_ALL = "for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[i], 'EX', ARGV[#ARGV]) end return 1"
_scripts: dict[int, Any] = {}


def entries_store(entries: dict[str, Any], timeout: int) -> None:
    """Write cache entries with one timeout: one Redis command, as ``cache.set_many`` stores them."""
    shared = caches["default"]
    if not isinstance(shared, RedisCache):
        cache.set_many(entries, timeout=timeout)
        return
    client = shared._cache.get_client(write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SET_ALL)
    dumps = shared._cache._serializer.dumps
    keys = [shared.make_and_validate_key(key) for key in entries]
    script(keys=keys, args=[*(dumps(value) for value in entries.values()), int(timeout)])


def snapshot_of(check: Check) -> dict[str, Any]:
    snap = {name: getattr(check, name) for name in (*DEFINITION, *STATE_FIELDS)}
    snap["id"] = str(check.pk)
    snap["expiring"] = check.expires_at is not None
    return snap


def store_snapshot(service: str, node: str, name: str, snap: dict[str, Any]) -> None:
    """Cache a check's snapshot after the commit that wrote it.  A shared cache that cannot be
    reached is logged: the write is stored (a job's failure ping while Redis is down is not
    refused for it); the key is remembered, and dropped before this process reads a snapshot again."""
    key = snapshot_key(service, node, name)
    try:
        held = cache.get(key)
        if held is not None and held["version"] > snap["version"]:
            return  # a newer write stored its own already
        cache.set(key, snap, timeout=SNAPSHOT_SECONDS)
    except CACHE_DOWN as exc:
        _unsure.add(key)
        log.warning("monitor: the snapshot of %s/%s/%s could not be cached: %s", service, node, name, exc)


# --- applying ---------------------------------------------------------------------------------------


def reports_ingest(*, reports: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Apply parsed reports; per report the checks' states after them.

    The shared cache is read once for the whole batch (every check's snapshot, and whether each
    service is known) and written once (every result's time and output).  While it cannot be
    reached, the checks are read from the database instead (:func:`snapshots_while_down`)."""
    names = {r["service"] for r in reports}
    cached = True
    try:
        held = snapshots_cached(reports, names)
    except CACHE_DOWN as exc:
        log.warning("monitor: reports stored without the shared cache: %s", exc)
        held, cached = snapshots_while_down(reports, names, now), False
    answers, entries = [], {}
    for report in reports:
        service, node = report["service"], report["node"]
        states = checks_report(
            service=service, node=node, items=report["checks"], now=now, snaps=held, entries=entries
        )
        if report["status"] is not None:
            node_status_report(service=service, node=node, now=now, **report["status"])
        if report["stats"] is not None:
            stats_record(service=service, node=node, stats=report["stats"], now=now)
        answers.append({"service": service, "node": node, "checks": states})
    if entries and cached:
        entries_store(entries, REPORT_SECONDS)
    return answers


def snapshots_cached(reports: list[dict[str, Any]], names: set[str]) -> dict[str, Any]:
    """The reported checks' snapshots (and whether each service is known), from the shared cache,
    once the snapshots this process could not write are dropped; what it lacks from the database."""
    if _unsure:
        unsure = list(_unsure)
        cache.delete_many(unsure)
        _unsure.difference_update(unsure)
    keys = [KNOWN_PREFIX + name for name in names]
    keys += [snapshot_key(r["service"], r["node"], item["name"]) for r in reports for item in r["checks"]]
    held = cache.get_many(keys)
    held.update(snapshots_load(reports, held))
    for name in names:
        if KNOWN_PREFIX + name not in held:
            ServiceHealth.objects.get_or_create(name=name)  # listed from its first report on
            cache.set(KNOWN_PREFIX + name, True, timeout=3600)
    return held


def snapshots_while_down(reports: list[dict[str, Any]], names: set[str], now: float) -> dict[str, Any]:
    """Redis down: no cache to record an unchanged result in, and the state loop will renew no
    deadline from one.  The checks are read from the database (one query), and only those whose
    deadline is more than half a TTL away are given as snapshots: an unchanged result of one of
    them is answered and not stored; any other result is applied to its row, which moves the
    deadline on.  One write per check per half TTL, and no check found late once Redis is back."""
    for name in names:
        ServiceHealth.objects.get_or_create(name=name)
    match = _reported_checks(reports, {})
    if match is None:
        return {}
    return {
        snapshot_key(c.service, c.node, c.name): snapshot_of(c)
        for c in Check.objects.filter(match)
        if c.expires_at is not None and c.expires_at.timestamp() > now + c.ttl / 2
    }


def reports_cached(*, reports: list[dict[str, Any]], now: float) -> list[dict[str, Any]] | None:
    """:func:`reports_ingest`'s answers when it would write nothing but the shared cache (every
    result unchanged, its snapshot cached, the service known, no status or stats), with the same
    cache write; else None, having done nothing (the hot route's path, :mod:`monitor_app.hot`)."""
    if _unsure or any(report["status"] is not None or report["stats"] is not None for report in reports):
        return None  # (snapshots to drop first: the full path does)
    keys = {KNOWN_PREFIX + report["service"] for report in reports}
    keys.update(snapshot_key(r["service"], r["node"], item["name"]) for r in reports for item in r["checks"])
    held = cache.get_many(list(keys))
    if len(held) != len(keys):
        return None
    answers, entries = [], {}
    for report in reports:
        service, node, states = report["service"], report["node"], []
        for item in report["checks"]:
            snap = held[snapshot_key(service, node, item["name"])]
            if not unchanged(snap, item, now):
                return None
            entries[report_key(snap["id"])] = (
                now,
                item["reported"],
                item["output"],
                item["truncated"],
                item["results"],
            )
            state = {"id": snap["id"], "name": item["name"], "status": snap["status"], "changed": False}
            states.append(state)
        answers.append({"service": service, "node": node, "checks": states})
    if entries:
        entries_store(entries, REPORT_SECONDS)
    return answers


def snapshots_load(reports: list[dict[str, Any]], held: dict[str, Any]) -> dict[str, Any]:
    """The snapshots the cache did not have, read from the database in one query (and cached):
    a cold or restarted cache costs a read per check, not a write."""
    match = _reported_checks(reports, held)
    if match is None:
        return {}
    found = {snapshot_key(c.service, c.node, c.name): snapshot_of(c) for c in Check.objects.filter(match)}
    if found:
        cache.set_many(found, timeout=SNAPSHOT_SECONDS)
    return found


def _reported_checks(reports: list[dict[str, Any]], held: dict[str, Any]) -> Q | None:
    """The reported checks whose snapshot is not in ``held``, as one filter; None if none."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for report in reports:
        missing = [
            item["name"]
            for item in report["checks"]
            if snapshot_key(report["service"], report["node"], item["name"]) not in held
        ]
        if missing:
            wanted.setdefault((report["service"], report["node"]), []).extend(missing)
    if not wanted:
        return None
    match = Q()
    for (service, node), names in wanted.items():
        match |= Q(service=service, node=node, name__in=names)
    return match


def unchanged(snap: dict[str, Any] | None, item: dict[str, Any], now: float) -> bool:
    """True when the result changes nothing stored: the cache alone records it."""
    if snap is None or snap["kind"] != Check.Kind.REPORT or snap["failure_rate"] or not snap["expiring"]:
        return False
    if any(snap[key] != value for key, value in item["definition"].items()):
        return False
    move = engine.evaluate(_Snapshot(snap), item["reported"], now=now)
    return move.flip is None and not move.changes


class _Snapshot:
    """A snapshot's keys as attributes (what :func:`engine.evaluate` reads)."""

    __slots__ = ("_snap",)

    def __init__(self, snap: dict[str, Any]) -> None:
        self._snap = snap

    def __getattr__(self, name: str) -> Any:
        return self._snap[name]


def checks_report(
    *,
    service: str,
    node: str,
    items: list[dict[str, Any]],
    now: float,
    snaps: dict[str, Any],
    entries: dict[str, Any],
) -> list[dict[str, Any]]:
    """Apply one node's check results (``snaps``: the snapshots read; each result's cache entry
    is added to ``entries``); ``[{id, name, status, changed}]``."""
    states = []
    written = False
    for item in items:
        snap = snaps.get(snapshot_key(service, node, item["name"]))
        if unchanged(snap, item, now):
            check_id, status, flipped = snap["id"], snap["status"], False
        else:
            applied = check_write(service=service, node=node, item=item, now=now)
            check_id, status, flipped = str(applied.check.pk), applied.check.status, applied.flip is not None
            written = True
        entries[report_key(check_id)] = (
            now,
            item["reported"],
            item["output"],
            item["truncated"],
            item["results"],
        )
        states.append({"id": check_id, "name": item["name"], "status": status, "changed": flipped})
    if written:
        node_resumed(service, node, now)
    return states


def node_resumed(service: str, node: str, now: float) -> None:
    """A result was stored (its check re-armed): a node that had reported STOPPED is back,
    whether or not it says so, and counts again.  One indexed UPDATE, on the full path only (an
    unchanged result of a known check is answered from the cache, and a stopped node's
    snapshots are gone, so its first result comes here)."""
    if NodeStatus.objects.filter(service=service, node=node, status=NodeStatus.Status.STOPPED).update(
        status=NodeStatus.Status.UNKNOWN
    ):
        try:
            cache.delete(f"{STATUS_PREFIX}{service}/{node}")
        except CACHE_DOWN as exc:  # the node's next status is stored whatever it says then
            log.warning(
                "monitor: the status of %s/%s could not be dropped from the cache: %s", service, node, exc
            )
        reminders_resume(service, node, now)
        health.service_refresh(name=service, now=now)


def reminders_resume(service: str, node: str, now: float) -> None:
    """A node that had stopped is back: the failures of its checks that were alerted and still
    stand are reminded of again, the next reminder a period from now (the stop cleared them)."""
    down = Check.objects.filter(
        service=service,
        node=node,
        status=State.CRITICAL,
        alerting=True,
        remind_every__gt=0,
        next_reminder_at=None,
    )
    for pk, every in down.values_list("pk", "remind_every"):
        Check.objects.filter(pk=pk, next_reminder_at=None).update(
            next_reminder_at=engine.to_datetime(now + every)
        )


def check_write(*, service: str, node: str, item: dict[str, Any], now: float) -> engine.Applied:
    """Create the check if new, store its definition changes, and apply the result."""
    definition = dict(item["definition"])
    check = Check.objects.filter(service=service, node=node, name=item["name"]).first()
    if check is None:
        interval = definition.get("interval") or settings.MONITOR_DEFAULT_INTERVAL
        ttl = definition.get("ttl") or max(interval * 3, 1)
        try:
            with transaction.atomic():
                check = Check.objects.create(
                    service=service,
                    node=node,
                    name=item["name"],
                    kind=Check.Kind.REPORT,
                    **{**definition, "interval": interval, "ttl": ttl},
                )
        except IntegrityError:  # created by a concurrent report
            check = Check.objects.get(service=service, node=node, name=item["name"])
        definition = {}
    changed = {key: value for key, value in definition.items() if getattr(check, key) != value}
    if "interval" in changed and "ttl" not in definition:
        changed["ttl"] = changed["interval"] * 3
    extra = {
        **changed,
        "output": item["output"],
        "truncated": item["truncated"],
        "results": item["results"],
        "last_report": engine.to_datetime(now),
        "expires_at": engine.to_datetime(now + changed.get("ttl", check.ttl)),
    }
    return engine.check_apply(check=check, reported=item["reported"], now=now, extra=extra)


def node_status_report(
    *, service: str, node: str, status: str, info: dict[str, Any], interval: int, ttl: int, now: float
) -> None:
    """Store a node's status when it changed (the cache remembers what was stored)."""
    key = f"{STATUS_PREFIX}{service}/{node}"
    marker = (status, json.dumps(info, sort_keys=True), interval, ttl)
    try:
        unchanged_status = cache.get(key) == marker
    except CACHE_DOWN:  # what was stored cannot be known: stored again, as a changed status is
        unchanged_status = False
    if unchanged_status:
        return
    with transaction.atomic():
        held = NodeStatus.objects.select_for_update().filter(service=service, node=node).first()
        stopped_changed = (held.status if held else "unknown") != status and "stopped" in (
            status,
            held.status if held else "",
        )
        NodeStatus.objects.update_or_create(
            service=service,
            node=node,
            defaults={
                "status": status,
                "info": info,
                "interval": interval,
                "ttl": ttl,
                "reported": datetime.fromtimestamp(now, UTC),
            },
        )
        if status == "stopped" and stopped_changed:
            _pause_checks(service, node)
        elif stopped_changed:
            reminders_resume(service, node, now)
        if stopped_changed:
            health.service_refresh(name=service, now=now)
    try:
        cache.set(key, marker, timeout=3600)
    except CACHE_DOWN as exc:  # stored again next time
        log.warning("monitor: the status of %s/%s could not be cached: %s", service, node, exc)


def _pause_checks(service: str, node: str) -> None:
    """A node that stopped on purpose sends no more results: its checks stop expiring (no
    ``expired`` flip or alert after a clean stop) and reminding (of a failure it had) until its
    next result re-arms them.  Their cached snapshots are replaced by the paused ones (not
    expiring, so that result is stored, not only cached), with the new version, so a write that
    read the check before the stop cannot cache its older snapshot over them."""
    checks = Check.objects.filter(service=service, node=node, kind=Check.Kind.REPORT)
    checks.update(expires_at=None, next_reminder_at=None, version=F("version") + 1)
    paused = {check.name: snapshot_of(check) for check in checks}

    def cache_paused() -> None:
        for name, snap in paused.items():
            store_snapshot(service, node, name, snap)

    transaction.on_commit(cache_paused)


def stats_record(*, service: str, node: str, stats: dict[str, Any], now: float) -> None:
    StatSample.objects.create(
        service=service,
        node=node,
        at=datetime.fromtimestamp(now, UTC),
        **{key: stats[key] for key in ("cpu", "memory", "disk", "runtime", "threads", "seconds")},
        requests=stats["requests"],
        errors=stats["errors"],
        dropped=stats["dropped"],
        endpoints=stats["endpoints"],
    )
