"""The ``platform <service> ...`` commands: the platform's API from a shell.

They connect with ``--url`` (or ``PLATFORM_URL``) as the service account in
``PLATFORM_CLIENT_ID`` / ``PLATFORM_CLIENT_SECRET``, print JSON on stdout, print API errors as
JSON on stderr, and exit 1 on an error (``auth check`` also exits 1 when the answer is "deny").
Each service's commands live in ``platform_client/cli/<service>.py`` with an
``add_commands(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from importlib import import_module
from importlib.util import find_spec
from typing import Any

import httpx

from platform_client.session import PlatformError, PlatformSession

#: Services with commands, in the order ``platform --help`` lists them.
SERVICES = ("auth", "config", "discovery", "events", "monitor", "router", "trace", "db")


def add_service_commands(commands: argparse._SubParsersAction) -> list[str]:
    """Add every service's command group; returns the names added."""
    added = []
    for name in SERVICES:
        module = f"platform_client.cli.{name}"
        if find_spec(module) is not None:
            import_module(module).add_commands(commands)
            commands.choices[name].set_defaults(func=run)
            added.append(name)
    return added


def _session(options: argparse.Namespace) -> PlatformSession:
    return PlatformSession(
        options.url, options.client_id, options.client_secret, scopes=options.scope or None
    )


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def metadata_pairs(pairs: list[str]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--metadata takes key=value, got {pair!r}")
        metadata[key] = value
    return metadata


def list_all(session: PlatformSession, path: str, params: dict | None = None) -> list[dict]:
    items: list[dict] = []
    page = session.call("GET", path, params=params)
    while True:
        items += page["results"]
        if not page.get("next"):
            return items
        page = session.call("GET", page["next"])


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("PLATFORM_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--client-id", default=os.environ.get("PLATFORM_CLIENT_ID"))
    parser.add_argument("--client-secret", default=os.environ.get("PLATFORM_CLIENT_SECRET"))
    parser.add_argument("--scope", action="append", help="Ask for this scope only (repeatable).")


def _error(error: dict[str, Any]) -> int:
    """Print an error in the API's shape on stderr; exit status 1."""
    json.dump({"error": error}, sys.stderr)
    sys.stderr.write("\n")
    return 1


def run(options: argparse.Namespace) -> int:
    handler: Callable[[PlatformSession, argparse.Namespace], Any] = options.handler
    try:
        with _session(options) as session:
            result = handler(session, options)
    except PlatformError as exc:
        error = {"status": exc.status, "code": exc.code, "message": exc.message, "details": exc.details}
        return _error(error)
    except httpx.HTTPError as exc:  # the platform is unreachable, slow, or answered nonsense
        return _error({"code": "unreachable", "message": f"{type(exc).__name__}: {exc}"})
    except OSError as exc:  # a file named on the command line
        return _error({"code": "os_error", "message": str(exc)})
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if isinstance(result, str):
        sys.stdout.write(result + "\n")
    else:
        print_json(result)
    return getattr(options, "exit_code", 0)
