"""``platform trace ...``: search traces, show one, services, the dependency graph, compare."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from platform_client import trace
from platform_client.cli import add_connection_options
from platform_client.session import PlatformSession


def trace_search(s: PlatformSession, o: argparse.Namespace) -> Any:
    return trace.search(
        s,
        service=o.service,
        remote_service=o.remote_service,
        operation=o.operation,
        tag=o.tag,
        word=o.word,
        min_duration_ms=o.min_duration_ms,
        max_duration_ms=o.max_duration_ms,
        error="true" if o.errors else None,
        since=o.since,
        until=o.until,
        limit=o.limit,
    )


#: Zipkin's fields in epoch microseconds, and durations in microseconds.
TIMES = ("start", "timestamp", "last_seen")


def readable(data: Any) -> Any:
    """For ``--output table``: times as UTC instants (ending in Z, as the dashboards), durations in ms
    (JSON keeps the numbers)."""
    if isinstance(data, list):
        return [readable(item) for item in data]
    if not isinstance(data, dict):
        return data
    shown = {}
    for key, value in data.items():
        if key in TIMES and isinstance(value, int):
            value = datetime.fromtimestamp(value / 1e6, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        elif key == "duration" and isinstance(value, int):
            value = f"{value / 1000:.3f} ms"
        shown[key] = value
    return shown


def add_commands(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("trace", help="Search and read distributed traces.")
    add_connection_options(group)
    group.set_defaults(table_view=readable)
    sub = group.add_subparsers(dest="trace_command", required=True)

    find = sub.add_parser("search", help="Traces with a span matching every condition, newest first.")
    find.add_argument("--service")
    find.add_argument("--remote-service")
    find.add_argument("--operation")
    find.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    find.add_argument("--word", action="append", default=[], help="A tag key or an event name.")
    find.add_argument("--min-duration-ms", type=float)
    find.add_argument("--max-duration-ms", type=float)
    find.add_argument("--errors", action="store_true", help="Only traces with an error.")
    find.add_argument("--since", help="RFC 3339 (default: TRACE_DEFAULT_LOOKBACK_HOURS ago)")
    find.add_argument("--until", help="RFC 3339")
    find.add_argument("--limit", type=int, default=20)
    find.set_defaults(handler=trace_search)

    show = sub.add_parser("show", help="One trace: its spans as a tree (skew adjusted unless --raw).")
    show.add_argument("trace_id")
    show.add_argument("--raw", action="store_true")
    show.set_defaults(handler=lambda s, o: trace.get(s, o.trace_id, raw=o.raw))

    listed = sub.add_parser("services", help="Services that report spans, with their operations.")
    listed.set_defaults(handler=lambda s, o: trace.services(s))

    deps = sub.add_parser("deps", help="The service graph: calls, errors, latency percentiles.")
    deps.add_argument("--since", help="RFC 3339 (default: an hour ago)")
    deps.add_argument("--until", help="RFC 3339")
    deps.set_defaults(handler=lambda s, o: trace.dependencies(s, since=o.since, until=o.until))

    both = sub.add_parser("compare", help="Two traces side by side, matched by service and operation.")
    both.add_argument("a")
    both.add_argument("b")
    both.set_defaults(handler=lambda s, o: trace.compare(s, o.a, o.b))
