"""``platform trace ...``: search traces, show one, services, the dependency graph, compare, keep rules."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from platform_client import trace
from platform_client.cli import add_connection_options, count
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
TIMES = ("start", "end", "timestamp", "last_seen")


def _instant(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _ms(micros: int) -> str:
    return f"{micros / 1000:.3f} ms"


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
            value = _instant(value)
        elif key == "duration" and isinstance(value, int):
            value = _ms(value)
        elif key == "services" and isinstance(value, dict):  # a trace's spans per service
            value = ", ".join(f"{name}: {count}" for name, count in value.items())
        shown[key] = value
    return shown


def span_tree(trace: dict) -> list[dict]:
    """``trace show`` as a table: one row a span, in the tree's order, indented by depth, with its
    start as an offset from the trace's."""
    start = trace.get("start") or 0
    return [
        {
            "span": "  " * span["depth"] + span["name"],
            "service": span["service"],
            "kind": span["kind"],
            "offset": _ms(span["timestamp"] - start),
            "duration": _ms(span["duration"]),
            "error": span["error"],
            "span_id": span["span_id"],
        }
        for span in trace["spans"]
    ]


def service_operations(services: list[dict]) -> list[dict]:
    """``trace services`` as a table: each service's operations as ``name (KIND)``."""
    return [
        {
            "name": service["name"],
            "operations": ", ".join(f"{op['name']} ({op['kind']})" for op in service["operations"]),
            "last_seen": _instant(service["last_seen"]),
        }
        for service in services
    ]


def graph_edges(graph: dict) -> list[dict]:
    """``trace deps`` as a table: one row a caller -> callee edge (JSON has the services too)."""
    return [
        {
            "call": f"{edge['parent']} -> {edge['child']}",
            **{k: v for k, v in edge.items() if k not in ("parent", "child")},
        }
        for edge in graph["edges"]
    ]


def compared_spans(comparison: dict) -> list[dict]:
    """``trace compare`` as a table: the whole traces, then one row per service and operation
    (largest differences first): its time in A and in B (``-``: not in that trace; ``(n
    spans)``: their times summed), the difference B - A, and errors in A/B."""

    def side(stats: dict) -> str:
        if not stats["count"]:
            return "-"
        return _ms(stats["duration"]) + (f" ({stats['count']} spans)" if stats["count"] > 1 else "")

    a, b = comparison["a"], comparison["b"]
    rows = [{"span": "(whole trace)", "a": _ms(a["duration"]), "b": _ms(b["duration"])}]
    rows[0].update(difference=_ms(comparison["difference"]), errors="")
    for span in comparison["spans"]:
        rows.append(
            {
                "span": f"{span['service']}: {span['name']}",
                "a": side(span["a"]),
                "b": side(span["b"]),
                "difference": _ms(span["difference"]),
                "errors": f"{span['a']['errors']}/{span['b']['errors']}",
            }
        )
    return rows


def add_commands(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("trace", help="Search and read distributed traces.")
    add_connection_options(group)
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
    find.add_argument("--limit", type=count, default=20)
    find.set_defaults(handler=trace_search, table_view=readable)

    show = sub.add_parser("show", help="One trace: its spans as a tree (skew adjusted unless --raw).")
    show.add_argument("trace_id")
    show.add_argument("--raw", action="store_true")
    show.set_defaults(handler=lambda s, o: trace.get(s, o.trace_id, raw=o.raw), table_view=span_tree)

    listed = sub.add_parser("services", help="Services that report spans, with their operations.")
    listed.set_defaults(handler=lambda s, o: trace.services(s), table_view=service_operations)

    deps = sub.add_parser("deps", help="The service graph: calls, errors, latency percentiles.")
    deps.add_argument("--since", help="RFC 3339 (default: an hour ago)")
    deps.add_argument("--until", help="RFC 3339")
    deps.set_defaults(
        handler=lambda s, o: trace.dependencies(s, since=o.since, until=o.until), table_view=graph_edges
    )

    both = sub.add_parser("compare", help="Two traces side by side, matched by service and operation.")
    both.add_argument("a")
    both.add_argument("b")
    both.set_defaults(handler=lambda s, o: trace.compare(s, o.a, o.b), table_view=compared_spans)

    _rule_commands(sub)


def _rule(o: argparse.Namespace) -> dict[str, Any]:
    """The rule as given; what is left out takes its default (a PUT replaces the whole rule)."""
    rule = {
        "keep_share": o.keep_share,
        "slower_than_ms": o.slower_than_ms,
        "retention_days": o.retention_days,
    }
    rule = {key: value for key, value in rule.items() if value is not None}
    if o.keep_errors is not None:
        rule["keep_errors"] = o.keep_errors
    return rule


def _rule_commands(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("rules", help="Keep rules: which traces each service keeps, and for how long.")
    actions = group.add_subparsers(dest="rule_command", required=True)
    actions.add_parser("list", help="Every keep rule you may read.").set_defaults(
        handler=lambda s, o: trace.rules(s)
    )
    put = actions.add_parser(
        "set", help="Create or replace a service's rule (* for every other); needs trace:manage."
    )
    put.add_argument("service")
    put.add_argument("--keep-share", type=float, help="0.0 to 1.0 of the other traces (default 1.0).")
    put.add_argument("--slower-than-ms", type=count, help="Keep every trace slower than this.")
    put.add_argument(
        "--keep-errors", action=argparse.BooleanOptionalAction, help="Keep failed traces (default)."
    )
    put.add_argument("--retention-days", type=count, help="Default: the global retention.")
    put.set_defaults(handler=lambda s, o: trace.set_rule(s, o.service, **_rule(o)))
    remove = actions.add_parser("rm", help="Delete a service's rule; needs trace:manage.")
    remove.add_argument("service")
    remove.set_defaults(handler=lambda s, o: trace.delete_rule(s, o.service) or {"deleted": o.service})
