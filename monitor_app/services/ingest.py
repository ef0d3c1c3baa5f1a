"""Ingest: what service nodes report (check results, their status, their process stats).

A report is ``{service, node, checks: [...], status: {...}, stats: {...}}``; a batch is several.
Each check result is checked (:func:`parse_check`), its output cut to ``MONITOR_MAX_OUTPUT_BYTES``
(and flagged ``truncated``), and applied:

* the check's state as last stored is kept in the shared cache (its *snapshot*); a result that
  changes nothing stored (same state, counters at their caps, same definition, a deadline set)
  is only written to the cache, with its time and output, and costs no database write;
* anything else goes through the state engine's compare-and-set write
  (:func:`monitor_app.services.engine.check_apply`).

The state loop renews a deadline from the cached time of the last result (see ``loop``).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import IntegrityError, transaction
from django.db.models import F, Q

from monitor_app.models import STATES, Check, NodeStatus, ServiceHealth, StatSample
from monitor_app.services import engine, health
from monitor_app.services.names import CHECK_NAME, NODE_NAME, SERVICE_NAME, check_ref_valid
from platformsite.api.errors import Invalid
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

SNAPSHOT_PREFIX = "monitor:c:"
REPORT_PREFIX = "monitor:r:"
STATUS_PREFIX = "monitor:s:"
KNOWN_PREFIX = "monitor:k:"
#: A snapshot is read again from the database at least this often (a lost race heals by then;
#: a miss costs one read for the whole batch).
SNAPSHOT_SECONDS = 300
#: A result's cache entry outlives any TTL the loop could still need it for.
REPORT_SECONDS = 86400 * 63
#: Fields of a check a report may define; a result that sets none differently costs no write.
DEFINITION = (
    "description",
    "critical",
    "interval",
    "ttl",
    "failures_before_critical",
    "success_before_passing",
    "failure_rate",
    "flap",
    "depends_on",
    "remind_every",
)
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
NODE_STATUSES = {"unknown", "started", "running", "stopped"}


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
    key = snapshot_key(service, node, name)
    held = cache.get(key)
    if held is not None and held["version"] > snap["version"]:
        return  # a newer write stored its own already
    cache.set(key, snap, timeout=SNAPSHOT_SECONDS)


# --- input -----------------------------------------------------------------------------------------


def _fail(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", code="invalid_report", details={field: message})


def _int(item: dict[str, Any], key: str, where: str, *, low: int, high: int) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())  # also inf (``1e999``) and NaN
    ):
        raise _fail(f"{where}.{key}", "A whole number.")
    if not low <= value <= high:
        raise _fail(f"{where}.{key}", f"Between {low} and {high}.")
    return int(value)


def _positive(value: Any, field: str, *, high: float = 10**7) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(field, "A number.")
    if not 0 < value <= high:
        raise _fail(field, f"Above 0 and at most {high}.")
    return float(value)


def parse_state(value: Any, field: str) -> str:
    if isinstance(value, str):
        state = engine.ALIASES.get(value, value)
        if state in STATES:
            return state
    raise _fail(field, "One of passing, warning, critical, unknown (or OK, ERROR, UNKNOWN).")


def cut_output(value: Any, field: str) -> tuple[str, bool]:
    """The output kept (at most MONITOR_MAX_OUTPUT_BYTES of UTF-8) and whether it was cut."""
    if value is None:
        return "", False
    if not isinstance(value, str):
        raise _fail(field, "A string.")
    limit = settings.MONITOR_MAX_OUTPUT_BYTES
    value = value.replace("\x00", "\ufffd")
    encoded = value.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return encoded.decode("utf-8", "replace"), False
    return encoded[:limit].decode("utf-8", "ignore"), True


def parse_definition(item: dict[str, Any], where: str) -> dict[str, Any]:
    """The definition fields a check result carries, checked (only those given)."""
    found: dict[str, Any] = {}
    if "description" in item:
        if not isinstance(item["description"], str) or len(item["description"]) > 500:
            raise _fail(f"{where}.description", "A string of at most 500 characters.")
        found["description"] = item["description"].replace("\x00", "")
    if "critical" in item:
        if not isinstance(item["critical"], bool):
            raise _fail(f"{where}.critical", "true or false.")
        found["critical"] = item["critical"]
    for key, low, high in (
        ("interval", 1, 86400 * 31),
        ("ttl", 1, 86400 * 62),
        ("failures_before_critical", 1, 100),
        ("success_before_passing", 1, 100),
        ("remind_every", 0, 86400 * 31),
    ):
        value = _int(item, key, where, low=low, high=high)
        if value is not None:
            found[key] = value
    if item.get("failure_rate") is not None:
        found["failure_rate"] = parse_failure_rate(item["failure_rate"], f"{where}.failure_rate")
    if item.get("flap") is not None:
        found["flap"] = parse_flap(item["flap"], f"{where}.flap")
    if "depends_on" in item:
        found["depends_on"] = parse_depends_on(item["depends_on"], f"{where}.depends_on")
    return found


def parse_failure_rate(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"window", "threshold", "min_samples"}:
        raise _fail(field, "{window: seconds, threshold: 0-1, min_samples}.")
    if "window" not in value or "threshold" not in value:
        raise _fail(field, "window and threshold are required.")
    threshold = value["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise _fail(f"{field}.threshold", "A share above 0 and at most 1.")
    return {
        "window": _positive(value["window"], f"{field}.window", high=86400 * 7),
        "threshold": float(threshold),
        "min_samples": _int(value, "min_samples", field, low=1, high=10_000) or 1,
    }


def parse_flap(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) - {"window", "max_transitions"} or len(value) != 2:
        raise _fail(field, "{window: seconds, max_transitions}.")
    return {
        "window": _positive(value["window"], f"{field}.window", high=86400 * 7),
        "max_transitions": _int(value, "max_transitions", field, low=1, high=1000),
    }


def parse_depends_on(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or len(value) > 20:
        raise _fail(field, "A list of at most 20 checks, each 'service/node/name' (node empty for a job).")
    for ref in value:
        if not check_ref_valid(ref):
            raise _fail(field, f"{str(ref)[:80]!r} is not 'service/node/name'.")
    return list(dict.fromkeys(value))


def parse_check(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _fail(where, "An object {name, status, output, results, interval, ttl, ...}.")
    name = item.get("name")
    if not CHECK_NAME.matches(name):
        raise _fail(f"{where}.name", CHECK_NAME.hint)
    reported = parse_state(item.get("status"), f"{where}.status")
    output, truncated = cut_output(item.get("output", item.get("error")), f"{where}.output")
    results = item.get("results") or {}
    if not isinstance(results, dict):
        raise _fail(f"{where}.results", "An object.")
    problem = unstorable(results, max_depth=16)
    if problem is None and len(json.dumps(results)) > settings.MONITOR_MAX_RESULTS_BYTES:
        problem = f"At most {settings.MONITOR_MAX_RESULTS_BYTES} bytes as JSON."
    if problem:
        raise _fail(f"{where}.results", problem)
    definition = parse_definition(item, where)
    interval = definition.get("interval")
    ttl = definition.get("ttl")
    if interval is not None and ttl is not None and ttl < interval:
        raise _fail(f"{where}.ttl", "At least the interval.")
    return {
        "name": name,
        "reported": reported,
        "output": output,
        "truncated": truncated,
        "results": results,
        "definition": definition,
    }


def parse_report(report: Any, where: str = "report") -> dict[str, Any]:
    """A report checked: its service, node, check results, status and stats (400 if bad)."""
    if not isinstance(report, dict):
        raise _fail(where, "An object {service, node, checks, status, stats}.")
    service, node = report.get("service"), report.get("node")
    if not SERVICE_NAME.matches(service):
        raise _fail(f"{where}.service", SERVICE_NAME.hint)
    if not NODE_NAME.matches(node):
        raise _fail(f"{where}.node", NODE_NAME.hint)
    checks = report.get("checks") or []
    if not isinstance(checks, list) or len(checks) > settings.MONITOR_MAX_BATCH:
        raise _fail(f"{where}.checks", f"A list of at most {settings.MONITOR_MAX_BATCH} check results.")
    parsed = [parse_check(item, f"{where}.checks[{i}]") for i, item in enumerate(checks)]
    names = [item["name"] for item in parsed]
    if len(set(names)) != len(names):
        raise _fail(f"{where}.checks", "Each check name once per report.")
    status = parse_status(report["status"], f"{where}.status") if report.get("status") is not None else None
    stats = parse_stats(report["stats"], f"{where}.stats") if report.get("stats") is not None else None
    return {"service": service, "node": node, "checks": parsed, "status": status, "stats": stats}


def parse_status(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, "An object {status, info, interval, ttl}.")
    status = value.get("status")
    status = status.lower() if isinstance(status, str) else status
    if status not in NODE_STATUSES:
        raise _fail(f"{field}.status", "One of UNKNOWN, STARTED, RUNNING, STOPPED.")
    info = value.get("info") or {}
    if not isinstance(info, dict) or unstorable(info, max_depth=16) or len(json.dumps(info)) > 8192:
        raise _fail(f"{field}.info", "An object of at most 8 KiB as JSON.")
    return {
        "status": status,
        "info": info,
        "interval": _int(value, "interval", field, low=1, high=86400) or 0,
        "ttl": _int(value, "ttl", field, low=1, high=86400 * 2) or 0,
    }


#: The largest value each stat may take: a machine of 10,000 cores at 100 % (cpu is a percentage
#: of one core), 2^64 bytes, a runtime of three centuries, counts covering a day.  Beyond them a
#: value is nonsense, and averaging such values in the downsampling overflows (an infinity that
#: JSON cannot carry on SQLite, an out-of-range error on PostgreSQL).
STAT_LIMITS = {"cpu": 1e6, "memory": 2.0**64, "disk": 2.0**64, "runtime": 1e10, "seconds": 86400.0}


def _number(value: Any, field: str, high: float) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= high
    ):
        raise _fail(field, f"A number from 0 to {high:g}.")
    return float(value)


def parse_stats(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, "An object {cpu, memory, disk, runtime, threads, seconds, endpoints}.")
    stats: dict[str, Any] = {
        key: _number(value.get(key), f"{field}.{key}", STAT_LIMITS[key]) for key in ("cpu", "memory", "disk")
    }
    stats["runtime"] = _number(value.get("runtime"), f"{field}.runtime", STAT_LIMITS["runtime"])
    stats["threads"] = _int(value, "threads", field, low=0, high=10**6)
    seconds = value.get("seconds", value.get("interval"))
    stats["seconds"] = _number(seconds, f"{field}.seconds", STAT_LIMITS["seconds"]) or 0.0
    endpoints = value.get("endpoints") or []
    if not isinstance(endpoints, list) or len(endpoints) > 200:
        raise _fail(f"{field}.endpoints", "A list of at most 200 {method, success, errors, dropped}.")
    totals = {"requests": 0, "errors": 0, "dropped": 0}
    kept = []
    for i, endpoint in enumerate(endpoints):
        where = f"{field}.endpoints[{i}]"
        if not isinstance(endpoint, dict) or not isinstance(endpoint.get("method"), str):
            raise _fail(where, "{method, success, errors, dropped}.")
        counts = {
            key: _int(endpoint, key, where, low=0, high=10**12) or 0
            for key in ("success", "errors", "dropped")
        }
        method = endpoint["method"][:200].replace("\x00", "")
        if UNSTORABLE_CHARS.search(method):
            raise _fail(f"{where}.method", "A lone surrogate cannot be stored.")
        kept.append({"method": method, **counts})
        totals["requests"] += counts["success"] + counts["errors"]
        totals["errors"] += counts["errors"]
        totals["dropped"] += counts["dropped"]
    return {**stats, **totals, "endpoints": kept}


# --- applying ---------------------------------------------------------------------------------------


def reports_ingest(*, reports: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """Apply parsed reports; per report the checks' states after them.

    The shared cache is read once for the whole batch (every check's snapshot, and whether each
    service is known) and written once (every result's time and output)."""
    names = {r["service"] for r in reports}
    keys = [KNOWN_PREFIX + name for name in names]
    keys += [snapshot_key(r["service"], r["node"], item["name"]) for r in reports for item in r["checks"]]
    held = cache.get_many(keys)
    held.update(snapshots_load(reports, held))
    for name in names:
        if KNOWN_PREFIX + name not in held:
            ServiceHealth.objects.get_or_create(name=name)  # listed from its first report on
            cache.set(KNOWN_PREFIX + name, True, timeout=3600)
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
    if entries:
        entries_store(entries, REPORT_SECONDS)
    return answers


def reports_cached(*, reports: list[dict[str, Any]], now: float) -> list[dict[str, Any]] | None:
    """:func:`reports_ingest`'s answers when it would write nothing but the shared cache (every
    result unchanged, its snapshot cached, the service known, no status or stats), with the same
    cache write; else None, having done nothing (the hot route's path, :mod:`monitor_app.hot`)."""
    if any(report["status"] is not None or report["stats"] is not None for report in reports):
        return None
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
        return {}
    match = Q()
    for (service, node), names in wanted.items():
        match |= Q(service=service, node=node, name__in=names)
    found = {snapshot_key(c.service, c.node, c.name): snapshot_of(c) for c in Check.objects.filter(match)}
    if found:
        cache.set_many(found, timeout=SNAPSHOT_SECONDS)
    return found


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
        cache.delete(f"{STATUS_PREFIX}{service}/{node}")
        health.service_refresh(name=service, now=now)


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
    if cache.get(key) == marker:
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
        if stopped_changed:
            health.service_refresh(name=service, now=now)
    cache.set(key, marker, timeout=3600)


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
