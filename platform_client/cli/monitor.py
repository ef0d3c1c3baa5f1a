"""``platform monitor ...``: the fleet's health, checks, history, job pings, maintenance windows."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from platform_client.cli import EXIT_USAGE, _error, add_connection_options, count, list_all
from platform_client.monitor import ping_request
from platform_client.session import PlatformSession

A = "/api/v1/monitor"


def monitor_services(s: PlatformSession, o: argparse.Namespace) -> Any:
    if o.name:
        return s.call("GET", f"{A}/services/{o.name}/")
    return list_all(s, f"{A}/services/")


def monitor_checks(s: PlatformSession, o: argparse.Namespace) -> Any:
    if o.id:
        return s.call("GET", f"{A}/checks/{o.id}/")
    params = {
        key: value for key, value in (("service", o.service), ("node", o.node), ("status", o.status)) if value
    }
    return list_all(s, f"{A}/checks/", params or None)


def monitor_history(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Flips and monthly uptime of a check (by id) or a service (by name)."""
    base = f"{A}/checks/{o.target}" if o.check else f"{A}/services/{o.target}"
    flips = list_all(s, f"{base}/flips/", limit=o.limit)
    uptime = s.call("GET", f"{base}/uptime/", params={"months": o.months})["months"]
    return {"flips": flips, "uptime": uptime}


#: ``history`` as a table: when first, then what flipped and why (JSON has every field).
FLIP_COLUMNS = ("at", "node", "name", "old", "new", "reason", "alert", "suppressed")


def history_view(history: dict) -> dict:
    flips = [{key: flip.get(key) for key in FLIP_COLUMNS} for flip in history["flips"]]
    return {"flips": flips, "uptime": history["uptime"]}


def monitor_silence(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Open a maintenance window for a service (or one of its checks), for --for minutes."""
    ends = datetime.now(UTC) + timedelta(minutes=o.minutes)
    body: dict[str, Any] = {"service": o.service, "ends": ends.isoformat(), "reason": o.reason}
    if o.check:
        body["check"] = o.check
    return s.call("POST", f"{A}/maintenance/", json=body)


def monitor_ping(o: argparse.Namespace) -> int:
    """A job ping needs no credentials: the check's id (or key/slug) is the secret."""
    action = "" if o.action == "success" else o.action
    body = sys.stdin.read() if o.body_from_stdin else ""
    try:
        response = ping_request(getattr(o, "url", None), o.check, action, body=body, rid=o.rid)
    except ValueError as exc:  # the action: nothing was sent
        return _error({"code": "invalid_input", "message": str(exc)}, EXIT_USAGE)
    except httpx.HTTPError as exc:
        return _error({"code": "unreachable", "message": f"{type(exc).__name__}: {exc}"})
    if response.status_code in (200, 201):  # 201: the ping created the job (?create=1)
        sys.stdout.write("Created\n" if response.status_code == 201 else "OK\n")
        return 0
    try:
        error = dict(response.json()["error"])
    except (ValueError, KeyError, TypeError):  # not the platform's error shape (a proxy's page)
        error = {"code": "ping_failed", "message": response.text[:200]}
    return _error({"status": response.status_code, **error})


def _minutes(text: str) -> int:
    """``--for``: whole minutes, at most ten years."""
    try:
        minutes = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"whole minutes, got {text!r}") from None
    if not 1 <= minutes <= 10 * 366 * 24 * 60:
        raise argparse.ArgumentTypeError(f"between 1 and {10 * 366 * 24 * 60} minutes (ten years)")
    return minutes


def add_commands(commands: argparse._SubParsersAction) -> None:
    monitor = commands.add_parser("monitor", help="Fleet health, checks, history, job pings, silences.")
    add_connection_options(monitor)
    sub = monitor.add_subparsers(dest="monitor_command", required=True)

    services = sub.add_parser("services", help="Every service's health, or one service's nodes and checks.")
    services.add_argument("name", nargs="?")
    services.set_defaults(handler=monitor_services)

    checks = sub.add_parser("checks", help="Checks (filtered), or one check by id.")
    checks.add_argument("--id")
    checks.add_argument("--service")
    checks.add_argument("--node")
    checks.add_argument("--status", choices=["passing", "warning", "critical", "unknown"])
    checks.set_defaults(handler=monitor_checks)

    history = sub.add_parser(
        "history", help="Flips and monthly uptime of a service, or of a check (--check)."
    )
    history.add_argument("target", help="A service name, or a check id with --check.")
    history.add_argument("--check", action="store_true")
    history.add_argument("--months", type=int, default=3)
    history.add_argument("--limit", type=count, default=50, help="Newest flips shown.")
    history.set_defaults(handler=monitor_history, table_view=history_view)

    ping = sub.add_parser("ping", help="Ping a job check (no credentials needed).")
    ping.add_argument("check", help="The job's id, or key/slug.")
    ping.add_argument(
        "action", nargs="?", default="success", help="success, start, fail, log or an exit status."
    )
    ping.add_argument("--rid", help="Pairs a start with its end.")
    ping.add_argument("--body-from-stdin", action="store_true", help="Send stdin as the ping's body.")
    ping.set_defaults(func=monitor_ping)

    silence = sub.add_parser("silence", help="Open a maintenance window (alerts silenced).")
    silence.add_argument("service")
    silence.add_argument("--check", help="Only this check (its id).")
    silence.add_argument("--for", dest="minutes", type=_minutes, default=60, help="Minutes (default 60).")
    silence.add_argument("--reason", default="")
    silence.set_defaults(handler=monitor_silence)
