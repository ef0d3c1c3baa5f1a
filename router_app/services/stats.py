"""Stats ingest: callers' per-window call counts, stored newest-first, pruned by age.

A batch is checked whole before anything is stored (400 naming each bad window and field).
Windows naming a service discovery does not know are skipped and listed in the answer; a batch
of nothing else is refused with 404 ``unknown_service``.  Of the windows of one (caller,
service, node, endpoint), the newest ``ROUTER_KEEP_WINDOWS`` are kept: a batch carrying more
keeps its newest, a window sent again replaces the stored one, and windows older than
``ROUTER_KEEP_WINDOWS * ROUTER_WINDOW_SECONDS`` seconds are skipped at ingest and pruned later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from discovery_app import selectors as discovery
from platform_client.router_stats import BUCKETS
from platformsite.api.errors import NotFound
from router_app.models import StatsWindow
from router_app.services.common import ENDPOINT, NODE, SERVICE, invalid_fields

COUNTS = ("requests", "successes", "errors", "timeouts", "dropped", "consecutive_5xx")
FIELDS = {"service", "node", "endpoint", "start", "seconds", "latency", *COUNTS}
MAX_COUNT = 2**53
KEY = ("caller", "service", "node", "endpoint", "start")


@dataclass
class IngestReport:
    accepted: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _int(value: Any) -> int | None:
    """A non-negative integer (JSON numbers only; booleans are not counts), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
        return None
    value = int(value)
    return value if 0 <= value < MAX_COUNT else None


def _latency(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    if value is None:
        return {"buckets": {}, "sum_ms": 0.0}, None
    if not isinstance(value, dict) or set(value) - {"buckets", "sum_ms"}:
        return None, "An object {buckets: {index: count}, sum_ms}."
    buckets = value.get("buckets", {})
    if not isinstance(buckets, dict):
        return None, "buckets must map bucket indexes to counts."
    clean: dict[str, int] = {}
    for index, count in buckets.items():
        if not (isinstance(index, str) and index.isascii() and index.isdigit() and int(index) < BUCKETS):
            return None, f"Bucket indexes are 0-{BUCKETS - 1}, got {str(index)[:20]!r}."
        if (number := _int(count)) is None:
            return None, f"Bucket {index}: a count is a whole number from 0 to {MAX_COUNT - 1}."
        if number:
            clean[str(int(index))] = number
    total = value.get("sum_ms", 0)
    if isinstance(total, bool) or not isinstance(total, int | float) or not (0 <= total < 1e18):
        return None, "sum_ms is a number of milliseconds from 0, under 10^18."
    return {"buckets": clean, "sum_ms": float(total)}, None


def _window(raw: Any, now: float) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if not isinstance(raw, dict):
        return None, {"window": "An object."}
    errors: dict[str, str] = {}
    if unknown := set(raw) - FIELDS:
        errors["window"] = f"Unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}."
    window: dict[str, Any] = {}
    if not SERVICE.matches(raw.get("service")):
        errors["service"] = f"A service name: {SERVICE.hint}."
    node = raw.get("node", "")
    if node != "" and not NODE.matches(node):
        errors["node"] = f"A node id ({NODE.hint}), or '' for calls dropped before a pick."
    endpoint = raw.get("endpoint", "")
    if endpoint != "" and not ENDPOINT.matches(endpoint):
        errors["endpoint"] = f"An endpoint name: {ENDPOINT.hint}."
    start = raw.get("start")
    if isinstance(start, bool) or not isinstance(start, int | float) or not math.isfinite(start) or start < 0:
        errors["start"] = "The window's start, in seconds since the epoch."
    elif start > now + settings.ROUTER_MAX_SKEW_SECONDS:
        errors["start"] = f"More than {settings.ROUTER_MAX_SKEW_SECONDS} s in the future."
    seconds = _int(raw.get("seconds", settings.ROUTER_WINDOW_SECONDS))
    if seconds is None or not 1 <= seconds <= 3600:
        errors["seconds"] = "The window's length: 1-3600 seconds."
    for name in COUNTS:
        value = _int(raw.get(name, 0))
        if value is None:
            errors[name] = f"A whole number from 0 to {MAX_COUNT - 1}."
        window[name] = value
    if not errors.keys() & {"requests", "successes", "errors", "timeouts"}:
        if window["successes"] + window["errors"] + window["timeouts"] > window["requests"]:
            errors["requests"] = "successes + errors + timeouts cannot exceed requests."
        if node == "" and window["requests"]:
            errors["node"] = "Calls that were made name the node they went to."
    latency, problem = _latency(raw.get("latency"))
    if problem:
        errors["latency"] = problem
    if errors:
        return None, errors
    return {
        **window,
        "service": raw["service"],
        "node": node,
        "endpoint": endpoint,
        "start": datetime.fromtimestamp(int(start), UTC),
        "seconds": seconds,
        "latency": latency,
    }, {}


def parse_windows(raw: Any, now: float) -> list[dict[str, Any]]:
    """The batch's windows, checked; 400 naming each bad window (by position) and field."""
    if not isinstance(raw, list) or not raw:
        raise invalid_fields({"windows": ["A non-empty list of windows."]})
    if len(raw) > settings.ROUTER_MAX_BATCH:
        raise invalid_fields({"windows": [f"At most {settings.ROUTER_MAX_BATCH} windows per call."]})
    windows, errors = [], {}
    for position, item in enumerate(raw):
        window, problems = _window(item, now)
        if problems:
            errors[str(position)] = problems
            if len(errors) >= 20:
                break
        else:
            windows.append(window)
    if errors:
        raise invalid_fields({"windows": errors})
    return windows


def known_services(names: set[str]) -> set[str]:
    """The names discovery holds a service for (its cached documents: no query when warm)."""
    return {name for name in names if discovery.service_entry(name).exists}


def stats_ingest(*, caller: str, windows: list[Any], now: float) -> IngestReport:
    """Store a caller's windows (see the module's docstring for what is kept)."""
    parsed = parse_windows(windows, now)
    known = known_services({w["service"] for w in parsed})
    oldest = datetime.fromtimestamp(now, UTC) - timedelta(
        seconds=settings.ROUTER_KEEP_WINDOWS * settings.ROUTER_WINDOW_SECONDS
    )
    report = IngestReport()
    latest: dict[tuple, dict[str, Any]] = {}
    for position, window in enumerate(parsed):
        if window["service"] not in known:
            report.skipped.append(
                {"window": position, "code": "unknown_service", "service": window["service"]}
            )
        elif window["start"] < oldest:
            report.skipped.append({"window": position, "code": "too_old", "service": window["service"]})
        else:
            window["caller"] = caller
            latest[tuple(window[k] for k in KEY)] = window  # sent twice in one batch: the last counts
    if not latest and any(s["code"] == "unknown_service" for s in report.skipped):
        names = sorted({s["service"] for s in report.skipped if s["code"] == "unknown_service"})
        raise NotFound(
            "No window names a service the registry knows.",
            code="unknown_service",
            details={"services": names[:20]},
        )
    by_key: dict[tuple, list[dict[str, Any]]] = {}
    for window in latest.values():
        by_key.setdefault(tuple(window[k] for k in KEY[:4]), []).append(window)
    rows = []
    received = datetime.fromtimestamp(now, UTC)
    for key_windows in by_key.values():
        key_windows.sort(key=lambda w: w["start"])
        for window in key_windows[: -settings.ROUTER_KEEP_WINDOWS]:  # older than the newest kept
            report.skipped.append({"window": None, "code": "superseded", "service": window["service"]})
        rows += [StatsWindow(**w, received=received) for w in key_windows[-settings.ROUTER_KEEP_WINDOWS :]]
    with transaction.atomic():
        StatsWindow.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=list(KEY),
            update_fields=["seconds", *COUNTS, "latency", "received"],
            batch_size=1000,
        )
    report.accepted = len(rows)
    return report


def stats_prune(*, now: float) -> int:
    """Delete windows older than the newest ``ROUTER_KEEP_WINDOWS`` windows' span."""
    oldest = datetime.fromtimestamp(now, UTC) - timedelta(
        seconds=settings.ROUTER_KEEP_WINDOWS * settings.ROUTER_WINDOW_SECONDS
    )
    deleted, _ = StatsWindow.objects.filter(start__lt=oldest).delete()
    return deleted
