"""What a node reports, read and checked: ``{service, node, checks: [...], status: {...},
stats: {...}}`` (:func:`parse_report`), each check result (:func:`parse_check`: its state, its
output cut to ``MONITOR_MAX_OUTPUT_BYTES`` and flagged ``truncated``, the check's definition),
the node's status and its process stats (within :data:`STAT_LIMITS`). Anything out of shape is
``Invalid`` (a 400 naming the field); nothing here touches the cache or the database, which
:mod:`monitor_app.services.ingest` does with what this gives it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings

from monitor_app.models import STATES
from monitor_app.services import engine
from monitor_app.services.names import CHECK_NAME, NODE_NAME, SERVICE_NAME, check_ref_valid
from platform_client.monitor import DEFINITION_FIELDS
from platformsite.api.errors import Invalid
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

#: Fields of a check a report may define (the SDK's list, so the two cannot drift); a result
#: that sets none differently costs no write.
DEFINITION = DEFINITION_FIELDS
NODE_STATUSES = {"unknown", "started", "running", "stopped"}
#: The fields each part of a report may hold: any other is a 400 naming it (a typo such as
#: ``intervall`` must not leave the default in place without a word).
REPORT_FIELDS = frozenset({"service", "node", "checks", "status", "stats"})
BATCH_FIELDS = frozenset({"reports"})
CHECK_FIELDS = frozenset({"name", "status", "output", "error", "results", *DEFINITION})
STATUS_FIELDS = frozenset({"status", "info", "interval", "ttl"})
STATS_FIELDS = frozenset({"cpu", "memory", "disk", "runtime", "threads", "seconds", "interval", "endpoints"})
ENDPOINT_FIELDS = frozenset({"method", "success", "errors", "dropped"})


def _fail(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", code="invalid_report", details={field: message})


def _known_fields(item: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    """400 naming the first field of ``item`` not ``allowed`` (``where`` "": at the top)."""
    if not allowed.issuperset(item):
        unknown = sorted(str(key)[:100] for key in item if key not in allowed)
        raise _fail(f"{where}.{unknown[0]}" if where else unknown[0], "Unknown field.")


def nulls_refused(item: dict[str, Any], where: str, *, nullable: frozenset[str] = frozenset()) -> None:
    """400 naming the first field of an operator's change that is null (but the ``nullable``
    ones): a null setting would change nothing, without a word."""
    for key in sorted(str(key) for key in item):
        if item[key] is None and key not in nullable:
            raise _fail(f"{where}.{key}", "Not null: leave the field out to keep its value.")


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
    value = UNSTORABLE_CHARS.sub("\ufffd", value)  # NUL and lone surrogates alike (a script's output)
    encoded = value.encode("utf-8")
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
    _known_fields(item, CHECK_FIELDS, where)
    name = item.get("name")
    if not CHECK_NAME.matches(name):
        raise _fail(f"{where}.name", CHECK_NAME.hint)
    reported = parse_state(item.get("status"), f"{where}.status")
    key = "output" if "output" in item else "error"  # monitor-srv's name: a refusal names what was sent
    output, truncated = cut_output(item.get(key), f"{where}.{key}")
    results = item.get("results", {})
    if not isinstance(results, dict):  # null, [] or "" included: not "no results" without a word
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


def parse_batch(batch: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """``{"reports": [...]}`` checked: nothing beside the reports, at most ``limit`` of them, each
    as :func:`parse_report` checks one (400 naming the first that is bad)."""
    _known_fields(batch, BATCH_FIELDS, "")
    reports = batch["reports"]
    if len(reports) > limit:
        raise Invalid(f"At most {limit} reports.", code="invalid_report")
    return [parse_report(report, f"reports[{index}]") for index, report in enumerate(reports)]


def parse_report(report: Any, where: str = "report") -> dict[str, Any]:
    """A report checked: its service, node, check results, status and stats (400 if bad)."""
    if not isinstance(report, dict):
        raise _fail(where, "An object {service, node, checks, status, stats}.")
    _known_fields(report, REPORT_FIELDS, where)
    service, node = report.get("service"), report.get("node")
    if not SERVICE_NAME.matches(service):
        raise _fail(f"{where}.service", SERVICE_NAME.hint)
    if not NODE_NAME.matches(node):
        raise _fail(f"{where}.node", NODE_NAME.hint)
    checks = report.get("checks", [])  # absent: no checks; null or {} is a 400 like "x"
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
    _known_fields(value, STATUS_FIELDS, field)
    status = value.get("status")
    status = status.lower() if isinstance(status, str) else None
    if status not in NODE_STATUSES:
        raise _fail(f"{field}.status", "One of UNKNOWN, STARTED, RUNNING, STOPPED.")
    info = value.get("info", {})
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
    _known_fields(value, STATS_FIELDS, field)
    stats: dict[str, Any] = {
        key: _number(value.get(key), f"{field}.{key}", STAT_LIMITS[key]) for key in ("cpu", "memory", "disk")
    }
    stats["runtime"] = _number(value.get("runtime"), f"{field}.runtime", STAT_LIMITS["runtime"])
    stats["threads"] = _int(value, "threads", field, low=0, high=10**6)
    seconds = value.get("seconds", value.get("interval"))
    stats["seconds"] = _number(seconds, f"{field}.seconds", STAT_LIMITS["seconds"]) or 0.0
    endpoints = value.get("endpoints", [])
    if not isinstance(endpoints, list) or len(endpoints) > 200:
        raise _fail(f"{field}.endpoints", "A list of at most 200 {method, success, errors, dropped}.")
    totals = {"requests": 0, "errors": 0, "dropped": 0}
    kept = []
    for i, endpoint in enumerate(endpoints):
        where = f"{field}.endpoints[{i}]"
        if not isinstance(endpoint, dict) or not isinstance(endpoint.get("method"), str):
            raise _fail(where, "{method, success, errors, dropped}.")
        _known_fields(endpoint, ENDPOINT_FIELDS, where)
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
