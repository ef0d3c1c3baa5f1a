"""Reads of the monitor service: the fleet, a service's nodes and checks, flips, stats, and the
failing nodes discovery's ``?passing=true`` leaves out (a cached selector)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.db.models.functions import TruncHour, TruncMinute

from monitor_app.models import Check, Maintenance, NodeStatus, ServiceHealth, State, StatSample
from monitor_app.services.health import failing_key
from monitor_app.services.history import stat_buckets
from monitor_app.services.ingest import report_key
from platformsite import localstate


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- discovery's ?passing=true --------------------------------------------------------------------

#: This process's copies: service -> (taken at, failing node ids).
_failing: dict[str, tuple[float, frozenset[str]]] = {}
MAX_FAILING = 10_000


def _forget_failing() -> None:
    _failing.clear()


_failing_stats = localstate.register_cache(
    "monitor.failing_nodes", size=lambda: len(_failing), reset=_forget_failing
)


def failing_nodes(service: str) -> frozenset[str]:
    """The nodes of ``service`` with a critical check critical (or reported STOPPED), as the
    monitor last stored them (:func:`monitor_app.services.health.failing_publish` keeps them in
    the shared cache); kept in this process for ``MONITOR_HEALTH_CACHE_SECONDS``.  No query: a
    service the monitor knows nothing of has no failing node."""
    now = time.monotonic()
    held = _failing.get(service)
    if held is not None and now - held[0] < settings.MONITOR_HEALTH_CACHE_SECONDS:
        _failing_stats.hits += 1
        return held[1]
    _failing_stats.misses += 1
    found = frozenset(cache.get(failing_key(service)) or ())
    if len(_failing) >= MAX_FAILING:
        _failing.clear()
    _failing[service] = (now, found)
    return found


# --- checks -----------------------------------------------------------------------------------------


def last_reports(checks: list[Check]) -> dict[str, tuple]:
    """The cached last result of each check (time, state, output, truncated, results): a node's
    last report, a job's last success ping."""
    keys = [report_key(check.pk) for check in checks]
    found = cache.get_many(keys) if keys else {}
    return {key.rsplit(":", 1)[1]: value for key, value in found.items()}


def check_summary(check: Check, report: tuple | None = None) -> dict[str, Any]:
    last = check.last_report.timestamp() if check.last_report else None
    output, truncated, results = check.output, check.truncated, check.results
    if report is not None and (last is None or report[0] >= last):
        last, output, truncated, results = report[0], report[2], report[3], report[4]
    return {
        "id": str(check.pk),
        "service": check.service,
        "node": check.node,
        "name": check.name,
        "kind": check.kind,
        "description": check.description,
        "status": check.status,
        "critical": check.critical,
        "output": output,
        "truncated": truncated,
        "results": results,
        "last_report": iso(last),
        "changed": iso(check.changed),
        "expires_at": iso(check.expires_at),
        "interval": check.interval,
        "ttl": check.ttl,
        "schedule": check.schedule,
        "timezone": check.timezone,
        "failures_before_critical": check.failures_before_critical,
        "success_before_passing": check.success_before_passing,
        "failure_rate": check.failure_rate,
        "flap": check.flap,
        "depends_on": check.depends_on,
        "remind_every": check.remind_every,
        "flapping": check.flapping,
        "alerting": check.alerting,
    }


def checks_rendered(checks: list[Check]) -> list[dict[str, Any]]:
    reports = last_reports(checks)
    return [check_summary(check, reports.get(str(check.pk))) for check in checks]


# --- services ---------------------------------------------------------------------------------------


def service_names() -> list[str]:
    names = set(Check.objects.values_list("service", flat=True).distinct())
    names.update(ServiceHealth.objects.values_list("name", flat=True))
    return sorted(names)


def services_overview(names: list[str]) -> list[dict[str, Any]]:
    """Health, node counts and checks by state of the named services (three queries)."""
    healths = {h.name: h for h in ServiceHealth.objects.filter(name__in=names)}
    by_state: dict[str, Counter] = defaultdict(Counter)
    for row in Check.objects.filter(service__in=names).values("service", "status").annotate(n=Count("id")):
        by_state[row["service"]][row["status"]] += row["n"]
    now = datetime.now(UTC)
    silenced = set(
        Maintenance.objects.filter(
            service__in=names, check_ref__isnull=True, starts__lte=now, ends__gt=now
        ).values_list("service", flat=True)
    )
    answer = []
    for name in names:
        health = healths.get(name)
        answer.append(
            {
                "name": name,
                "status": health.status if health else ServiceHealth.Status.UNKNOWN,
                "nodes": health.nodes if health else 0,
                "passing": health.passing if health else 0,
                "min_share": health.min_share if health else None,
                "remind_every": health.remind_every if health else 0,
                "alerting": bool(health and health.alerting),
                "in_maintenance": name in silenced,
                "changed": iso(health.changed) if health else None,
                "checks": {state: by_state[name].get(state, 0) for state in State.values},
            }
        )
    return answer


def service_detail(name: str) -> dict[str, Any] | None:
    overview = services_overview([name])[0]
    checks = list(Check.objects.filter(service=name).order_by("node", "name"))
    if not checks and not overview["nodes"] and not ServiceHealth.objects.filter(name=name).exists():
        return None
    rendered = checks_rendered(checks)
    statuses = {s.node: s for s in NodeStatus.objects.filter(service=name)}
    nodes: dict[str, dict[str, Any]] = {}
    jobs = []
    for check in rendered:
        if not check["node"]:
            jobs.append(check)
            continue
        node = nodes.setdefault(check["node"], {"node": check["node"], "passing": True, "checks": []})
        node["checks"].append(check)
        if check["critical"] and check["status"] == State.CRITICAL:
            node["passing"] = False
    for node_name, status in statuses.items():
        node = nodes.setdefault(node_name, {"node": node_name, "passing": True, "checks": []})
        node["status"] = {"status": status.status, "info": status.info, "reported": iso(status.reported)}
        if status.status == NodeStatus.Status.STOPPED:
            node["passing"] = False
    for node in nodes.values():
        node.setdefault("status", None)
    return {**overview, "members": [nodes[key] for key in sorted(nodes)], "jobs": jobs}


def maintenance_active(service: str, *, now: datetime) -> list[Maintenance]:
    return list(Maintenance.objects.filter(service=service, starts__lte=now, ends__gt=now))


# --- stats ------------------------------------------------------------------------------------------


MAX_STAT_POINTS = 5000
TRUNCATE = {StatSample.Resolution.MINUTE: TruncMinute, StatSample.Resolution.HOUR: TruncHour}


def _stat_point(row: dict[str, Any], resolution: str) -> dict[str, Any]:
    seconds, requests, errors = row["seconds"] or 0, row["requests"] or 0, row["errors"] or 0
    return {
        "at": iso(row["at"]),
        "node": row["node"],
        "resolution": resolution,
        **{name: row[name] for name in ("cpu", "memory", "disk", "runtime", "threads")},
        "seconds": seconds,
        "requests": requests,
        "errors": errors,
        "dropped": row["dropped"] or 0,
        "request_rate": round(requests / seconds, 3) if seconds else None,
        "error_rate": round(errors / seconds, 3) if seconds else None,
    }


def stats_series(*, service: str, node: str | None, since: datetime, until: datetime) -> dict[str, Any]:
    """Samples of a service (or one node) between two times, oldest first, the newest
    ``MAX_STAT_POINTS`` of them, at the finest resolution kept for the oldest (raw within
    MONITOR_STATS_RAW_HOURS, else per minute, else per hour): rows finer than that (the last
    day's raw samples in a week's window) are merged to it as the read goes."""
    now = datetime.now(UTC)
    oldest = now - since
    if oldest <= timedelta(hours=settings.MONITOR_STATS_RAW_HOURS):
        resolution = StatSample.Resolution.RAW
    elif oldest <= timedelta(days=settings.MONITOR_STATS_MINUTE_DAYS):
        resolution = StatSample.Resolution.MINUTE
    else:
        resolution = StatSample.Resolution.HOUR
    rows = StatSample.objects.filter(service=service, at__gte=since, at__lte=until)
    if node:
        rows = rows.filter(node=node)
    fields = ("at", "node", "cpu", "memory", "disk", "runtime", "threads")
    fields += ("seconds", "requests", "errors", "dropped")
    newest = ("-at", "-node")
    if resolution == StatSample.Resolution.RAW:
        found = [
            (row, row["resolution"])
            for row in rows.order_by(*newest).values(*fields, "errors", "dropped", "resolution")[
                :MAX_STAT_POINTS
            ]
        ]
    else:
        finer = [StatSample.Resolution.RAW]
        if resolution == StatSample.Resolution.HOUR:
            finer.append(StatSample.Resolution.MINUTE)
        stored = rows.exclude(resolution__in=finer).order_by(*newest).values(*fields)
        merged = stat_buckets(rows.filter(resolution__in=finer), TRUNCATE[resolution])
        found = [(row, resolution) for row in stored[:MAX_STAT_POINTS]]
        found += [({**row, "at": row["bucket"]}, resolution) for row in merged]
        found.sort(key=lambda item: (item[0]["at"], item[0]["node"]), reverse=True)
        del found[MAX_STAT_POINTS:]
    points = [_stat_point(row, kind) for row, kind in reversed(found)]
    return {"service": service, "node": node, "resolution": resolution, "points": points}
