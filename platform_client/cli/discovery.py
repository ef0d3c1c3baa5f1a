"""``platform discovery ...``: list and read services, register and deregister nodes, watch changes."""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time
from typing import Any

from platform_client.cli import EXIT_INTERRUPTED, add_connection_options, json_file, list_all, metadata_pairs
from platform_client.discovery import Discovery, Registration
from platform_client.session import PlatformSession

A = "/api/v1/discovery"


def discovery_list(s: PlatformSession, o: argparse.Namespace) -> Any:
    return list_all(s, f"{A}/services/", {"prefix": o.prefix} if o.prefix else None)


def discovery_get(s: PlatformSession, o: argparse.Namespace) -> Any:
    params: dict[str, Any] = {"label": o.label}
    if o.version:
        params["version"] = o.version
    if o.passing:
        params["passing"] = "true"
    return s.call("GET", f"{A}/services/{o.name}/", params=params)


def _endpoints(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    with open(path, encoding="utf-8") as handle:
        return json_file(handle.read(), "--endpoints")


def discovery_register(s: PlatformSession, o: argparse.Namespace) -> Any:
    registration = Registration(
        s,
        o.service,
        o.version,
        o.address,
        o.port,
        metadata_pairs(o.metadata),
        _endpoints(o.endpoints),
        interval=o.interval,
        ttl=o.ttl,
        node_id=o.id,
    )
    if not o.hold:
        return registration.register()
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        # systemd, docker stop and kill send SIGTERM: deregister then too, as on Ctrl-C, and end
        # with 0, a stop asked for (Ctrl-C: 130, interrupted, as every command)
        signal.signal(signal.SIGTERM, on_sigterm)
    try:  # an interrupt at any moment from here on deregisters (quietly if nothing was registered)
        registration.start()
        sys.stderr.write(
            f"Registered {registration.node_id}; heartbeating every {o.interval} s (Ctrl-C ends)\n"
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        o.exit_code = 0 if terminated else EXIT_INTERRUPTED
    finally:
        registration.deregister()
    return {"deregistered": registration.node_id}


def discovery_deregister(s: PlatformSession, o: argparse.Namespace) -> Any:
    s.call("DELETE", f"{A}/nodes/{o.node_id}/")
    return {"deregistered": o.node_id}


def discovery_watch(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Print each change as one JSON line, until --count changes or Ctrl-C."""
    discovery = Discovery(s, use_websocket=not o.no_websocket, wait_seconds=o.wait)
    results: queue.Queue = queue.Queue()
    for name in o.services:
        discovery.get_service(name)  # 404 for an unknown service
    discovery.watch(results.put, services=o.services or None)
    seen = 0
    try:
        while o.count is None or seen < o.count:
            result = results.get()
            sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
            sys.stdout.flush()
            seen += 1
    except KeyboardInterrupt:
        o.exit_code = EXIT_INTERRUPTED  # what was seen is said all the same
    finally:
        discovery.close()
    return json.dumps({"changes": seen})  # one line: the output stays JSON lines


def add_commands(commands: argparse._SubParsersAction) -> None:
    discovery = commands.add_parser("discovery", help="Services, nodes, heartbeats and watches.")
    add_connection_options(discovery)
    sub = discovery.add_subparsers(dest="discovery_command", required=True)

    listing = sub.add_parser("list", help="Services with their versions and node counts.")
    listing.add_argument("--prefix")
    listing.set_defaults(handler=discovery_list)

    get = sub.add_parser("get", help="A service's versions, endpoints and nodes.")
    get.add_argument("name")
    get.add_argument("--version")
    get.add_argument("--label", action="append", default=[], metavar="KEY:VALUE")
    get.add_argument("--passing", action="store_true", help="Only passing nodes.")
    get.set_defaults(handler=discovery_get)

    register = sub.add_parser("register", help="Register (or update) a node.")
    register.add_argument("service")
    register.add_argument("--address", required=True)
    register.add_argument("--port", type=int, required=True)
    register.add_argument("--version", default="latest")
    register.add_argument("--id", help="The node's id (default: generated).")
    register.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    register.add_argument(
        "--endpoints", metavar="FILE", help="JSON list of {name, request, response, metadata}."
    )
    register.add_argument("--interval", type=int, default=10)
    register.add_argument("--ttl", type=int, help="Seconds without heartbeat before expiry (3 x interval).")
    register.add_argument(
        "--hold", action="store_true", help="Stay in the foreground heartbeating; deregister on Ctrl-C."
    )
    register.set_defaults(handler=discovery_register)

    deregister = sub.add_parser("deregister", help="Remove a node.")
    deregister.add_argument("node_id")
    deregister.set_defaults(handler=discovery_deregister)

    watch = sub.add_parser("watch", help="Print changes as JSON lines (every service if none named).")
    watch.add_argument("services", nargs="*")
    watch.add_argument("--count", type=int, help="Stop after this many changes.")
    watch.add_argument("--wait", type=float, default=30.0, help="Blocking-query wait (fallback), seconds.")
    watch.add_argument("--no-websocket", action="store_true", help="Use blocking queries only.")
    watch.set_defaults(handler=discovery_watch)
