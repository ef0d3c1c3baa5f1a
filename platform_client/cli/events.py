"""``platform events ...``: publish, search, tail (websocket), summary and subscriptions."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from platform_client.cli import (
    EXIT_INTERRUPTED,
    add_connection_options,
    count,
    json_file,
    json_or_text,
    list_all,
    metadata_pairs,
    require_name,
)
from platform_client.event import search, subscribe
from platform_client.session import PlatformSession

E = "/api/v1/events"


def _json_arg(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            return json_file(handle.read(), "--data")
    return json_or_text(text, "--data", "to publish it as text, send it as a JSON string")


def events_publish(s: PlatformSession, o: argparse.Namespace) -> Any:
    event: dict[str, Any] = {"type": o.type, "source": o.source}
    for name in ("subject", "id", "root_id"):
        if value := getattr(o, name):
            event[name] = value
    if o.data is not None:
        event["data"] = _json_arg(o.data)
    if o.ext:
        event["metadata"] = metadata_pairs(o.ext, "--ext")
    return s.call("POST", f"{E}/", json=event)


def _search_params(o: argparse.Namespace) -> dict[str, Any]:
    params = {
        "type": o.type,
        "source": o.source,
        "subject": o.subject,
        "root_id": o.root_id,
        "from": o.since,
        "to": o.until,
        "order": o.order,
    }
    params.update({f"ext.{k}": v for k, v in metadata_pairs(o.ext, "--ext").items()})
    return params


def events_search(s: PlatformSession, o: argparse.Namespace) -> Any:
    return list(search(s, limit=o.limit, **_search_params(o)))


def events_get(s: PlatformSession, o: argparse.Namespace) -> Any:
    return s.call("GET", f"{E}/{o.id}/")


def events_summary(s: PlatformSession, o: argparse.Namespace) -> Any:
    params = {"group_by": o.group_by, "interval": o.interval, "from": o.since, "to": o.until}
    return s.call("GET", f"{E}/summary", params={k: v for k, v in params.items() if v})


def events_tail(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Print matching events as JSON lines until interrupted (or ``--count`` events)."""
    done = threading.Event()
    seen, last = 0, o.last_event_id

    def handler(event: dict[str, Any]) -> None:
        nonlocal seen, last
        if done.is_set():  # --count reached: a replay delivers the rest before the stop lands
            return
        sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
        sys.stdout.flush()
        seen, last = seen + 1, event.get("id", last)
        if o.count and seen >= o.count:
            done.set()

    subscription = subscribe(
        s,
        handler,
        types=[t for t in (o.types or "").split(",") if t],
        sources=[x for x in (o.sources or "").split(",") if x],
        subject_prefix=o.subject_prefix or "",
        last_event_id=o.last_event_id,
    )
    try:
        done.wait(o.timeout)
    except KeyboardInterrupt:
        o.exit_code = EXIT_INTERRUPTED  # what was seen is said all the same: resume after it
    finally:
        subscription.stop()
    return {"events": seen, "last_event_id": last}  # the last one printed: resume after it


def events_subscriptions(s: PlatformSession, o: argparse.Namespace) -> Any:
    base = f"{E}/subscriptions/"
    require_name(o, "subscriptions")
    match o.action:
        case "list":
            return list_all(s, base)
        case "get":
            return s.call("GET", f"{base}{o.name}/")
        case "create":
            body = {
                "name": o.name,
                "types": [t for t in (o.types or "").split(",") if t],
                "sources": [x for x in (o.sources or "").split(",") if x],
                "subject_prefix": o.subject_prefix or "",
                "url": o.webhook or "",
                "sink": "webhook" if o.webhook else "websocket",
            }
            return s.call("POST", base, json=body)
        case "delete":
            s.call("DELETE", f"{base}{o.name}/")
            return {"deleted": o.name}
        case "deliveries":
            return list_all(s, f"{base}{o.name}/deliveries/", {"status": o.status} if o.status else None)
        case "redeliver":
            return s.call("POST", f"{base}{o.name}/redeliver/", json={"all_dead": True})
    raise SystemExit(f"unknown action {o.action}")


#: ``events search`` as a table: what tells events apart, the data last (cut to fit a cell).
EVENT_COLUMNS = ("id", "time", "type", "source", "subject", "data")


def event_rows(page: Any) -> Any:
    events = page["results"] if isinstance(page, dict) and "results" in page else page
    return [{key: event.get(key, "") for key in EVENT_COLUMNS} for event in events]


def add_commands(commands: argparse._SubParsersAction) -> None:
    events = commands.add_parser("events", help="Publish, search and tail platform events.")
    add_connection_options(events)
    sub = events.add_subparsers(dest="events_command", required=True)

    publish = sub.add_parser("publish", help="Publish one event.")
    publish.add_argument("type")
    publish.add_argument("--data", help="JSON (or plain text, or @file.json).")
    publish.add_argument("--source", default="/cli")
    publish.add_argument("--subject", default="")
    publish.add_argument("--id", default="", help="The event's id (default: a new UUID).")
    publish.add_argument("--root-id", default="")
    publish.add_argument("--ext", action="append", default=[], metavar="NAME=VALUE")
    publish.set_defaults(handler=events_publish)

    find = sub.add_parser("search", help="Search stored events (newest first).")
    find.add_argument("--type", help="Exact, or a prefix like 'order.*'; comma-separated.")
    find.add_argument("--source")
    find.add_argument("--subject", help="Exact, or a prefix with a trailing '*'.")
    find.add_argument("--root-id")
    find.add_argument("--from", dest="since", help="RFC 3339")
    find.add_argument("--to", dest="until", help="RFC 3339")
    find.add_argument("--ext", action="append", default=[], metavar="NAME=VALUE")
    find.add_argument("--order", choices=["newest", "oldest"], default="newest")
    find.add_argument("--limit", type=count, default=100)
    find.set_defaults(handler=events_search, table_view=event_rows)

    get = sub.add_parser("get", help="One event, with the related events of its flow.")
    get.add_argument("id", type=int)
    get.set_defaults(handler=events_get)

    summary = sub.add_parser("summary", help="Counts per type or source over time.")
    summary.add_argument("--group-by", choices=["type", "source"], default="type")
    summary.add_argument("--interval", choices=["minute", "hour"], default="minute")
    summary.add_argument("--from", dest="since")
    summary.add_argument("--to", dest="until")
    summary.set_defaults(handler=events_summary)

    tail = sub.add_parser("tail", help="Follow live events (JSON lines) over the websocket.")
    tail.add_argument("--types", help="Comma-separated; 'order.*' by prefix.")
    tail.add_argument("--sources")
    tail.add_argument("--subject-prefix")
    tail.add_argument("--last-event-id", type=int, help="Replay stored events after this id first.")
    tail.add_argument("--count", type=int, default=0, help="Stop after this many events.")
    tail.add_argument("--timeout", type=float, default=None, help="Stop after this many seconds.")
    tail.set_defaults(handler=events_tail)

    subs = sub.add_parser("subscriptions", help="Webhook and websocket subscriptions.")
    subs.add_argument("action", choices=["list", "get", "create", "delete", "deliveries", "redeliver"])
    subs.add_argument("name", nargs="?")
    subs.add_argument("--types")
    subs.add_argument("--sources")
    subs.add_argument("--subject-prefix")
    subs.add_argument("--webhook", help="Webhook URL (http or https); without it: a websocket sink.")
    subs.add_argument("--status", choices=["pending", "delivered", "dead"])
    subs.set_defaults(handler=events_subscriptions)
