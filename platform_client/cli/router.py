"""``platform router ...``: routes, node stats, labels, rules, and why requests go where they go."""

from __future__ import annotations

import argparse
from typing import Any

from platform_client.cli import UsageError, add_connection_options, list_all
from platform_client.session import PlatformSession

A = "/api/v1/router"


def _labels(pairs: list[str]) -> str | None:
    for pair in pairs:
        if ":" not in pair:
            raise UsageError(f"Labels are KEY:VALUE, got {pair!r}.", "invalid_input")
    return ",".join(pairs) or None


def _routes(s: PlatformSession, o: argparse.Namespace) -> dict[str, Any]:
    params = {"caller": o.caller, "labels": _labels(o.label)}
    return s.call("GET", f"{A}/routes/{o.service}/", params={k: v for k, v in params.items() if v})


def router_routes(s: PlatformSession, o: argparse.Namespace) -> Any:
    return _routes(s, o)


def router_stats(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Each node's merged stats from the last evaluation, and the last decisions."""
    decisions = s.call("GET", f"{A}/services/{o.service}/decisions/")
    keep = (
        "node",
        "version",
        "state",
        "weight",
        "requests",
        "success_rate",
        "latency_mean_ms",
        "latency_p99_ms",
    )
    return {
        "service": decisions["service"],
        "evaluated": decisions["evaluated"],
        "enforce": decisions["enforce"],
        "nodes": [{key: node[key] for key in keep} for node in decisions["nodes"]],
        "events": decisions["events"][: o.events],
    }


def router_explain(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Where requests with these labels go, and why, in plain lines."""
    routes = _routes(s, o)
    lines = [
        f"{routes['service']}: decisions {'applied' if routes['enforce'] else 'recorded only (dry run)'}"
    ]
    if routes["rules_applied"]:
        for rule in routes["rules_applied"]:
            lines.append(
                f"rule #{rule['id']} (priority {rule['priority']}): {rule['key']}={rule['value']} "
                f"sends {rule['weight']}% to {rule['version']}"
            )
    elif routes["request_labels"]:
        lines.append("no rule matches these labels: requests spread over every version by node weight")
    for version in routes["versions"]:
        lines.append(f"version {version['version']}: {version['share']}% of the requests")
        for node in version["nodes"]:
            why = "; ".join(node["reasons"])
            lines.append(f"  {node['id']} ({node['address']}:{node['port']}) weight {node['weight']}: {why}")
    if routes["rate_limit"]:
        limit = routes["rate_limit"]
        lines.append(
            f"rate limit for {routes['caller'] or 'any caller'}: {limit['rate']}/s, burst {limit['burst']}"
        )
    lines.append(f"expires {routes['expires']} (ttl {routes['ttl']} s)")
    return {"service": routes["service"], "explain": lines}


def _definition(o: argparse.Namespace) -> dict[str, Any]:
    return {
        "service": o.service,
        "version": o.version,
        "key": o.key,
        "value": o.value,
        "weight": o.weight,
        "priority": o.priority if o.priority is not None else 0,
    }


def _kind_commands(sub: argparse._SubParsersAction, kind: str, helps: str) -> None:
    path = f"{A}/{kind}s/"
    group = sub.add_parser(f"{kind}s", help=helps)
    actions = group.add_subparsers(dest=f"{kind}_command", required=True)

    listing = actions.add_parser("list", help=f"Every {kind} (of one service with --service).")
    listing.add_argument("--service")
    listing.set_defaults(
        handler=lambda s, o: list_all(s, path, {"service": o.service} if o.service else None)
    )

    def fields(parser: argparse.ArgumentParser, priority_help: str = "Higher wins (default 0).") -> None:
        parser.add_argument("service")
        parser.add_argument("version")
        parser.add_argument("key")
        parser.add_argument("value")
        parser.add_argument("--weight", type=int, required=True, help="0-100 percent.")
        parser.add_argument("--priority", type=int, default=None, help=priority_help)

    def put(s: PlatformSession, o: argparse.Namespace) -> Any:
        if o.priority is None:  # a change of weight keeps the priority it had
            o.priority = s.call("GET", f"{path}{o.id}/")["priority"]
        return s.call("PUT", f"{path}{o.id}/", json=_definition(o))

    add = actions.add_parser("add", help=f"Create a {kind}.")
    fields(add)
    add.set_defaults(handler=lambda s, o: s.call("POST", path, json=_definition(o)))

    change = actions.add_parser("set", help=f"Change a {kind} (every field).")
    change.add_argument("id", type=int)
    fields(change, "Higher wins (default: the one it has).")
    change.set_defaults(handler=put)

    remove = actions.add_parser("rm", help=f"Delete a {kind}.")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=lambda s, o: s.call("DELETE", f"{path}{o.id}/") or {"deleted": o.id})


def _rate_limit_commands(sub: argparse._SubParsersAction) -> None:
    path = f"{A}/ratelimits/"
    group = sub.add_parser("ratelimits", help="Token buckets per (service, caller), enforced by the SDK.")
    actions = group.add_subparsers(dest="ratelimit_command", required=True)

    listing = actions.add_parser("list", help="Every rate limit (of one service with --service).")
    listing.add_argument("--service")
    listing.set_defaults(
        handler=lambda s, o: list_all(s, path, {"service": o.service} if o.service else None)
    )

    put = actions.add_parser("set", help="Set (create or replace) the bucket of a caller; * for any other.")
    put.add_argument("service")
    put.add_argument("caller")
    put.add_argument("--rate", type=float, required=True, help="Requests per second.")
    put.add_argument("--burst", type=int, required=True)
    put.set_defaults(
        handler=lambda s, o: s.call(
            "POST", path, json={"service": o.service, "caller": o.caller, "rate": o.rate, "burst": o.burst}
        )
    )

    remove = actions.add_parser("rm", help="Delete a rate limit.")
    remove.add_argument("id", type=int)
    remove.set_defaults(handler=lambda s, o: s.call("DELETE", f"{path}{o.id}/") or {"deleted": o.id})


def add_commands(commands: argparse._SubParsersAction) -> None:
    router = commands.add_parser("router", help="Routes, node stats, labels, rules (A/B), explanations.")
    add_connection_options(router)
    sub = router.add_subparsers(dest="router_command", required=True)

    for name, handler, helps in (
        ("routes", router_routes, "A service's routes: versions, nodes, weights, reasons, rules."),
        ("explain", router_explain, "Where requests (with --label) go, and why."),
    ):
        parser = sub.add_parser(name, help=helps)
        parser.add_argument("service")
        parser.add_argument("--caller", help="The calling service (picks its rate limit).")
        parser.add_argument("--label", action="append", default=[], metavar="KEY:VALUE")
        parser.set_defaults(handler=handler)

    stats = sub.add_parser("stats", help="Each node's merged stats and the last decisions.")
    stats.add_argument("service")
    stats.add_argument("--events", type=int, default=10, help="How many decisions to show.")
    stats.set_defaults(handler=router_stats)

    _kind_commands(sub, "label", "Labels: key=value on a share of a version's nodes.")
    _rate_limit_commands(sub)
    _kind_commands(sub, "rule", "Rules: a share of the requests labelled key=value to a version.")
