"""``platform db ...``: databases, tables, and records (get, put, delete, query) from a shell."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
from typing import Any

from platform_client.cli import UsageError, add_connection_options, count, json_file, metadata_pairs
from platform_client.db import UNSET, Databases, Record, Table
from platform_client.session import PlatformError, PlatformSession


def _record(record: Record, select: str | None = None) -> dict[str, Any]:
    """The record as the API answers it (``bytes`` in base64); with ``select``, those fields only."""
    out = dataclasses.asdict(record)
    for key in ("created", "updated"):
        out[key] = None if out[key] is None else out[key].isoformat().replace("+00:00", "Z")  # as the API
    out["bytes"] = None if record.bytes is None else base64.b64encode(record.bytes).decode()
    if select and select.strip() != "*":
        chosen = [key.strip() for key in select.split(",")]
        out = {key: out[key] for key in chosen if key in out}
    return out


def _table(s: PlatformSession, o: argparse.Namespace) -> Table:
    return Table(o.table, database=o.database, session=s)


def _data(raw: str | None) -> Any:
    if raw is None:
        return UNSET
    if raw.startswith("@"):
        with open(raw[1:], encoding="utf-8") as handle:
            raw = handle.read()
    return json_file(raw, "--data")


def db_databases(s: PlatformSession, o: argparse.Namespace) -> Any:
    return Databases(s).list()


def db_create_database(s: PlatformSession, o: argparse.Namespace) -> Any:
    dsn = ""
    if o.dsn_env:
        dsn = os.environ.get(o.dsn_env, "")
        if not dsn:
            raise UsageError(f"${o.dsn_env} is empty.", "invalid_input")
    options: dict[str, Any] = {}
    for key, value in metadata_pairs(o.option, "--option").items():
        options[key] = int(value) if value.isdigit() else value
    return Databases(s).create(
        o.name,
        backend=o.backend,
        dsn=dsn,
        options=options,
        owner_only=o.owner_only,
        publish_changes=o.change_feed,
    )


def db_tables(s: PlatformSession, o: argparse.Namespace) -> Any:
    return Databases(s).tables(o.database)


def db_get(s: PlatformSession, o: argparse.Namespace) -> Any:
    return _record(_table(s, o).read(o.id))


def db_put(s: PlatformSession, o: argparse.Namespace) -> Any:
    """Replace the record ``id`` (or create it when there is none, or no id is given)."""
    table = _table(s, o)
    data = _data(o.data)
    metadata = metadata_pairs(o.metadata) if o.metadata else UNSET
    if o.id is not None:
        try:
            return _record(table.update(o.id, data, metadata=metadata, expected_version=o.expected_version))
        except PlatformError as exc:
            if exc.code not in ("record_not_found", "table_not_found") or o.expected_version is not None:
                raise
    return _record(table.create(data, id=o.id, metadata=metadata))


def db_delete(s: PlatformSession, o: argparse.Namespace) -> Any:
    _table(s, o).delete(o.id, expected_version=o.expected_version)
    return {"deleted": o.id}


def db_query(s: PlatformSession, o: argparse.Namespace) -> Any:
    filters = []
    for item in o.filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(
                f"A filter is field=op.value (e.g. meta.env=eq.prod), got {item!r}.", "invalid_input"
            )
        filters.append((key, value))
    table = _table(s, o)
    if o.all:
        records = table.query(filters, order=o.order, select=o.select, limit=o.limit)
        return [_record(r, o.select) for r in records]
    page = table.page(filters, order=o.order, select=o.select, limit=o.limit, count=o.count)
    return {"results": [_record(r, o.select) for r in page.records], "next": page.next, "count": page.count}


def add_commands(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="Databases, tables and records (PostgREST-style queries).")
    add_connection_options(db)
    sub = db.add_subparsers(dest="db_command", required=True)

    sub.add_parser("databases", help="The databases you may read.").set_defaults(handler=db_databases)

    create = sub.add_parser("create-database", help="Register a database (needs db:manage).")
    create.add_argument("name")
    create.add_argument("--backend", default="platform", choices=["platform", "postgresql", "sqlite"])
    create.add_argument("--dsn-env", metavar="VAR", help="Read the DSN from this environment variable.")
    create.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    create.add_argument("--owner-only", action="store_true", help="Only its owner (and admin) may use it.")
    create.add_argument(
        "--change-feed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Publish db.record.* events, seen by any events:read holder (default: yes; no if --owner-only).",
    )
    create.set_defaults(handler=db_create_database)

    tables = sub.add_parser("tables", help="A database's tables.")
    tables.add_argument("database")
    tables.set_defaults(handler=db_tables)

    for name, handler, text in (("get", db_get, "Read a record."), ("delete", db_delete, "Delete a record.")):
        command = sub.add_parser(name, help=text)
        command.add_argument("database")
        command.add_argument("table")
        command.add_argument("id")
        if name == "delete":
            command.add_argument("--expected-version", type=int)
        command.set_defaults(handler=handler)

    put = sub.add_parser("put", help="Replace a record, or create it.")
    put.add_argument("database")
    put.add_argument("table")
    put.add_argument("id", nargs="?")
    put.add_argument("--data", help="JSON, or @file.")
    put.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    put.add_argument("--expected-version", type=int, help="409 unless the record is at this version.")
    put.set_defaults(handler=db_put)

    query = sub.add_parser("query", help="Query records: filters in PostgREST's grammar.")
    query.add_argument("database")
    query.add_argument("table")
    query.add_argument("filters", nargs="*", metavar="FIELD=OP.VALUE", help="e.g. meta.env=eq.prod")
    query.add_argument("--order", help="e.g. updated.desc")
    query.add_argument("--select", help="e.g. id,metadata")
    query.add_argument("--limit", type=count)
    query.add_argument("--count", choices=["exact", "planned", "estimated"])
    query.add_argument("--all", action="store_true", help="Follow every page.")
    query.set_defaults(handler=db_query)
