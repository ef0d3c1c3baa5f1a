"""``platform config ...``: read, write, watch and roll back namespaced configuration."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from platform_client.cli import (
    UsageError,
    add_connection_options,
    count,
    json_file,
    json_or_text,
    list_all,
)
from platform_client.session import PlatformError, PlatformSession

C = "/api/v1/config"


def _ns(name: str) -> str:
    return f"{C}/namespaces/{quote(name, safe='')}/"


def _layer(o: argparse.Namespace) -> str:
    return f"{_ns(o.namespace)}layers/{quote(o.env, safe='')}/"


def _values(o: argparse.Namespace) -> str:
    """The URL of PATH in the layer, PATH as written: each key quoted (``.`` and ``..`` too, which
    a client would otherwise resolve away) and the address's own ``/`` after it, so that the
    server judges the path (``db/`` too), not the URL."""
    keys = (quote(key, safe="") for key in o.path.split("/"))
    path = "/".join(k.replace(".", "%2E") if k in {".", ".."} else k for k in keys)
    return f"{_layer(o)}values/{path}/"


def _value(raw: str, as_string: bool) -> Any:
    if as_string:
        return raw
    return json_or_text(raw, "VALUE", "add --string to set it as text")


def _write_fields(o: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"comment": o.comment, "source": "cli"}
    if o.expected_revision is not None:
        body["expected_revision"] = o.expected_revision
    return body


def config_namespaces(s: PlatformSession, o: argparse.Namespace) -> Any:
    return list_all(s, f"{C}/namespaces/")


def config_create(s: PlatformSession, o: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"name": o.namespace, "description": o.description, "secret_paths": o.secret}
    if o.schema:
        body["json_schema"] = json_file(Path(o.schema).read_text(), "--schema")
    return s.call("POST", f"{C}/namespaces/", json=body)


def config_get(s: PlatformSession, o: argparse.Namespace) -> Any:
    if o.layer:
        if o.path:
            value = s.call("GET", _values(o))
            return value if o.full else value["value"]
        layer = s.call("GET", _layer(o))
        return layer if o.full else layer["data"]
    params = {"env": o.env}
    if o.path:
        params["path"] = o.path
    body = s.call("GET", f"{_ns(o.namespace)}resolve", params=params)
    return body if o.full else body["data"]


def config_set(s: PlatformSession, o: argparse.Namespace) -> Any:
    body = _write_fields(o)
    if o.file:
        text = sys.stdin.read() if o.file == "-" else Path(o.file).read_text()
        body["data"] = json_file(text, "--file")
        if o.path:
            body["value"] = body.pop("data")
            return s.call("PUT", _values(o), json=body)
        return s.call("PUT", _layer(o), json=body)
    if not o.path or o.value is None:
        raise UsageError("config set needs NAMESPACE PATH VALUE (or --file)")
    body["value"] = _value(o.value, o.string)
    method = "PATCH" if o.merge else "PUT"
    return s.call(method, _values(o), json=body)


def config_delete(s: PlatformSession, o: argparse.Namespace) -> Any:
    return s.call("DELETE", _values(o), json=_write_fields(o))


def config_history(s: PlatformSession, o: argparse.Namespace) -> Any:
    params = {
        k: v
        for k, v in {"env": o.env_filter, "author": o.author, "from": o.since, "to": o.until}.items()
        if v
    }
    path = f"{_ns(o.namespace)}audit/" if o.namespace else f"{C}/audit/"
    return list_all(s, path, params, limit=o.limit)


def config_diff(s: PlatformSession, o: argparse.Namespace) -> Any:
    params = {k: str(v) for k, v in {"from": o.from_revision, "to": o.to_revision}.items() if v is not None}
    return s.call("GET", f"{_layer(o)}diff", params=params)


def config_rollback(s: PlatformSession, o: argparse.Namespace) -> Any:
    body = _write_fields(o) | {"revision": o.revision}
    body.pop("source")
    return s.call("POST", f"{_layer(o)}rollback", json=body)


def config_watch(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Print the resolved document (one JSON line) at start and after every change (long-poll)."""
    path = f"{_ns(o.namespace)}resolve"
    body = s.call("GET", path, params={"env": o.env})
    seen = 0
    while True:
        sys.stdout.write(
            json.dumps({"revision": body["revision"], "data": body["data"]}, sort_keys=True) + "\n"
        )
        sys.stdout.flush()
        seen += 1
        if o.count and seen >= o.count:
            return json.dumps({"changes": seen - 1})  # one line: the output stays JSON lines
        while True:
            params = {"env": o.env, "wait": f"{o.wait}s", "revision": str(body["revision"])}
            response = s.get(path, params=params, timeout=o.wait + 15)
            if response.status_code == 304:
                continue
            if response.status_code >= 400:
                raise PlatformError.from_response(response)
            body = response.json()
            break


def add_commands(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser("config", help="Namespaced, versioned configuration.")
    add_connection_options(config)
    sub = config.add_subparsers(dest="config_command", required=True)

    def layer_args(parser: argparse.ArgumentParser, write: bool = False) -> None:
        parser.add_argument("--env", default="default", help="Environment layer (default: default).")
        if write:
            parser.add_argument("--comment", default="")
            parser.add_argument(
                "--expected-revision", type=int, help="Refuse (409) unless the layer is at N."
            )

    sub.add_parser("namespaces", help="List namespaces.").set_defaults(handler=config_namespaces)

    create = sub.add_parser("create", help="Create a namespace.")
    create.add_argument("namespace")
    create.add_argument("--description", default="")
    create.add_argument("--schema", help="A JSON Schema file every resolved environment must satisfy.")
    create.add_argument("--secret", action="append", default=[], metavar="PATH", help="A secret path.")
    create.set_defaults(handler=config_create)

    get = sub.add_parser("get", help="The resolved config (or one PATH of it).")
    get.add_argument("namespace")
    get.add_argument("path", nargs="?")
    layer_args(get)
    get.add_argument("--layer", action="store_true", help="Read the layer itself, not the resolution.")
    get.add_argument(
        "--full", action="store_true", help="Print the whole answer (revisions, etag; a layer's author...)."
    )
    get.set_defaults(handler=config_get)

    set_ = sub.add_parser("set", help="Set PATH to VALUE (JSON, else a string), or a layer from --file.")
    set_.add_argument("namespace")
    set_.add_argument("path", nargs="?")
    set_.add_argument("value", nargs="?")
    layer_args(set_, write=True)
    set_.add_argument("--file", help="A JSON file ('-': stdin) holding the value, or the whole layer.")
    set_.add_argument("--string", action="store_true", help="Take VALUE as a string, never JSON.")
    set_.add_argument("--merge", action="store_true", help="Deep-merge an object into what is there.")
    set_.set_defaults(handler=config_set)

    delete = sub.add_parser("delete", help="Delete PATH from a layer.")
    delete.add_argument("namespace")
    delete.add_argument("path")
    layer_args(delete, write=True)
    delete.set_defaults(handler=config_delete)

    history = sub.add_parser("history", help="The audit log (newest first).")
    history.add_argument("namespace", nargs="?")
    history.add_argument("--env", dest="env_filter")
    history.add_argument("--author")
    history.add_argument("--from", dest="since", help="RFC 3339")
    history.add_argument("--to", dest="until", help="RFC 3339")
    history.add_argument("--limit", type=count, default=50)
    history.set_defaults(handler=config_history)

    diff = sub.add_parser("diff", help="Paths added, removed and changed between two revisions.")
    diff.add_argument("namespace")
    layer_args(diff)
    diff.add_argument("--from", dest="from_revision", type=int)
    diff.add_argument("--to", dest="to_revision", type=int)
    diff.set_defaults(handler=config_diff)

    rollback = sub.add_parser("rollback", help="Make REVISION's data current again (a new revision).")
    rollback.add_argument("namespace")
    rollback.add_argument("revision", type=int)
    layer_args(rollback, write=True)
    rollback.set_defaults(handler=config_rollback)

    watch = sub.add_parser("watch", help="Print the resolved config now and after each change.")
    watch.add_argument("namespace")
    layer_args(watch)
    watch.add_argument("--wait", type=int, default=30, help="Long-poll seconds (max 60).")
    watch.add_argument("--count", type=int, default=0, help="Stop after printing this many documents.")
    watch.set_defaults(handler=config_watch)
