"""What every span format shares: id and time checks, tag values as strings, the span row."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from platformsite.jsonvalues import UNSTORABLE_CHARS, scrubbed, storable

_HEX = re.compile(r"[0-9a-f]+")
#: Spans starting before 2000-01-01 are refused: their time is in the wrong unit (seconds or
#: milliseconds where microseconds or nanoseconds were due) or missing.
EARLIEST_US = 946_684_800_000_000
#: How far in the future a span may start (clock skew between hosts), in microseconds.
FUTURE_SLACK_US = 24 * 3600 * 1_000_000
#: Longest string kept in a tag value, an annotation or a name (longer ones are cut).
MAX_TEXT = 4096
NAME_MAX, SERVICE_MAX = 255, 128
#: The longest span kept (µs): ten years; a longer one has its time in the wrong unit.
MAX_DURATION_US = 10 * 365 * 24 * 3600 * 1_000_000


def keys_kept(tags: dict[str, Any]) -> dict[str, Any]:
    """``tags`` (or any attributes) with keys a database stores, cut at ``NAME_MAX`` characters
    as names are."""
    keys = "".join(tags)
    if len(keys) > NAME_MAX and any(len(key) > NAME_MAX for key in tags):
        tags = {key[:NAME_MAX]: value for key, value in tags.items()}
    return tags if UNSTORABLE_CHARS.search(keys) is None else scrubbed(tags)


class Undecodable(ValueError):
    """The request as a whole cannot be read: nothing of it is stored (400)."""


class Refused(ValueError):
    """One span is refused (the others of its request may be stored)."""


def trace_id(value: Any) -> str:
    """A trace id in its stored form (32 lower hex), from 16 or 32 lower-hex characters."""
    if not isinstance(value, str) or len(value) not in (16, 32) or not _HEX.fullmatch(value):
        raise Refused(f"trace id {_shown(value)} is not 16 or 32 lower-hex characters")
    if not value.strip("0"):
        raise Refused("trace id is all zeros")
    return value.rjust(32, "0")


def span_id(value: Any, what: str = "span id") -> str:
    if not isinstance(value, str) or len(value) != 16 or not _HEX.fullmatch(value):
        raise Refused(f"{what} {_shown(value)} is not 16 lower-hex characters")
    if not value.strip("0"):
        raise Refused(f"{what} is all zeros")
    return value


def parent_id(value: Any) -> str:
    """A parent span id, or "" for none (absent, empty or all zeros)."""
    if value in (None, "") or (isinstance(value, str) and value and not value.strip("0")):
        return ""
    return span_id(value, "parent id")


def check_time(timestamp: Any, duration: Any) -> tuple[int, int]:
    """A span's start (µs since the epoch) and duration (µs), refused when implausible."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise Refused("timestamp is missing or not an integer (microseconds since the epoch)")
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise Refused("duration is not an integer (microseconds)")
    check_moment(timestamp, "timestamp")
    if duration < 0:
        raise Refused(f"duration {duration} is negative")
    if duration > MAX_DURATION_US:
        raise Refused(f"duration {duration} is longer than ten years (nanoseconds given?)")
    return timestamp, duration


def check_moment(value: int, what: str, unit: int = 1) -> None:
    """Refused when ``value``, the time ``what`` in µs since the epoch (ns when ``unit`` is 1000),
    is before 2000-01-01 or more than a day in the future: a span's start, an event's time."""
    in_ns = unit == 1000
    if value // unit < EARLIEST_US:
        given = (
            "seconds, milliseconds or microseconds given for nanoseconds"
            if in_ns
            else "seconds or milliseconds given for microseconds"
        )
        raise Refused(f"{what} {value} is before 2000-01-01 ({given}?)")
    if value // unit > time.time() * 1_000_000 + FUTURE_SLACK_US:
        raise Refused(
            f"{what} {value} is more than a day in the future" + ("" if in_ns else " (nanoseconds given?)")
        )


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A tag value as Zipkin keeps it: a string (numbers and booleans written out, lists and maps
    as JSON), cut at ``limit`` characters."""
    if isinstance(value, str):
        out = value
    elif isinstance(value, bool):
        out = "true" if value else "false"
    elif isinstance(value, float) and not math.isfinite(value):  # as JSON writes them, either encoding
        out = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    elif isinstance(value, int | float):
        out = repr(value)
    else:
        out = json.dumps(value, separators=(",", ":"), default=str)
    return storable(out[:limit])


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def new_span(
    *,
    trace: str,
    span: str,
    parent: str,
    name: str,
    kind: str,
    service: str,
    timestamp: int,
    duration: int,
    tags: dict[str, str],
    remote_service: str = "",
    annotations: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
    resource: dict[str, str] | None = None,
    scope: dict[str, Any] | None = None,
    local_endpoint: dict[str, Any] | None = None,
    remote_endpoint: dict[str, Any] | None = None,
    shared: bool = False,
    debug: bool = False,
    error: bool | None = None,
) -> dict[str, Any]:
    """A span row (the columns of ``trace_app.models.Span`` but ``id``)."""
    timestamp, duration = check_time(timestamp, duration)
    remote_service = text(remote_service, SERVICE_MAX)
    if remote_endpoint and "serviceName" in remote_endpoint:  # the name as its column keeps it (cut)
        remote_endpoint = {**remote_endpoint, "serviceName": remote_service}
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_id": parent,
        "name": text(name, NAME_MAX),
        "kind": kind,
        "service": text(service or "unknown_service", SERVICE_MAX),
        "remote_service": remote_service,
        "timestamp": timestamp,
        "duration": duration,
        "error": ("error" in tags) if error is None else error,
        "shared": shared,
        "debug": debug,
        # tag values and annotations are text() already: the keys and the rest are checked here
        "tags": keys_kept(tags),
        "annotations": annotations or [],
        "links": scrubbed(links) if links else [],
        "resource": scrubbed(keys_kept(resource)) if resource else {},
        "scope": scrubbed(scope) if scope else {},
        "local_endpoint": scrubbed(local_endpoint) if local_endpoint else {},
        "remote_endpoint": scrubbed(remote_endpoint) if remote_endpoint else {},
    }
