"""Writes of the catalog: databases, tables and row policies.

Every change announces itself on the catalog's invalidation topic after commit, so each
process's copy (:mod:`dbproxy_app.catalog`) is dropped.  Table storage on an external backend
is created before its row is committed and dropped after it is deleted: a table the API lists
always has storage.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from django.db import IntegrityError, transaction

from dbproxy_app import catalog, names
from dbproxy_app.backends import BACKENDS, TableRef
from dbproxy_app.backends.sqlite import FILE_NAME, file_name
from dbproxy_app.models import Database, RowPolicy, Table
from dbproxy_app.query.conditions import check_condition
from platformsite.api.errors import Conflict, Invalid
from platformsite.jsonvalues import unstorable
from platformsite.sealing import seal_text

OPTION_LIMITS = {"pool_max": (1, 100), "statement_timeout_ms": (1, 600_000)}


def check_database_name(name: str) -> str:
    names.DATABASE.check(name, "database")
    if name in names.RESERVED:
        raise Invalid(f"{name!r} is reserved.", code="invalid_database", details={"database": name})
    return name


def check_dsn(backend: str, dsn: str) -> str:
    """The DSN a backend accepts: none for ``platform``, a file name for ``sqlite``, a PostgreSQL
    connection string (URL or key=value) for ``postgresql``.  The message never repeats it."""
    if backend == Database.Backend.PLATFORM:
        if dsn:
            raise Invalid("The platform backend takes no DSN.", code="invalid_dsn")
        return ""
    if backend == Database.Backend.SQLITE:
        if dsn and not re.fullmatch(FILE_NAME, dsn):
            raise Invalid("An sqlite DSN is a file name such as orders.sqlite3.", code="invalid_dsn")
        return dsn
    if not dsn:
        raise Invalid("A postgresql database needs a DSN.", code="invalid_dsn")
    if unstorable(dsn, max_depth=1):
        raise Invalid("A DSN may not contain NUL characters or lone surrogates.", code="invalid_dsn")
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise Invalid("The DSN is not a PostgreSQL connection string.", code="invalid_dsn") from None
    return dsn


def check_file_free(name: str, backend: str, dsn: str) -> None:
    """An sqlite database's file is its own: a second name on the same file would read, write and
    drop what the first confines (``owner_only``, policy rules per database).  The answer does
    not name the other database."""
    if backend != Database.Backend.SQLITE:
        return
    wanted = file_name(name, dsn)
    for other in Database.objects.filter(backend=Database.Backend.SQLITE).exclude(name=name):
        if file_name(other.name, catalog.dsn_of(other)) == wanted:
            raise Conflict(
                f"Another database keeps its records in {wanted}: pick another file.",
                "dsn_in_use",
                {"database": name, "field": "dsn"},
            )


def check_options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    allowed = {"schema", *OPTION_LIMITS} if backend == Database.Backend.POSTGRESQL else set()
    for key, value in options.items():
        if key not in allowed:
            raise Invalid(
                f"Option {key!r} does not apply to the {backend} backend.",
                code="invalid_options",
                details={"option": str(key)[:60]},
            )
        if key == "schema":
            names.DATABASE.check(value, "schema")
        else:
            low, high = OPTION_LIMITS[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise Invalid(
                    f"Option {key!r} is an integer from {low} to {high}.",
                    code="invalid_options",
                    details={"option": key},
                )
    return options


def _announce(name: str) -> None:
    transaction.on_commit(lambda: catalog.changed(name))


@transaction.atomic
def database_create(
    *,
    name: str,
    backend: str = Database.Backend.PLATFORM,
    dsn: str = "",
    options: dict[str, Any] | None = None,
    owner: str = "",
    owner_only: bool = False,
    publish_changes: bool | None = None,
) -> Database:
    """Register a database. Its change feed is on unless it is confined (``owner_only``): every
    holder of ``events:read`` sees the feed, so a confined database publishes only when asked."""
    check_database_name(name)
    if publish_changes is None:
        publish_changes = not owner_only
    if backend not in BACKENDS:
        raise Invalid(f"Backends are {', '.join(BACKENDS)}.", code="invalid_backend")
    dsn = check_dsn(backend, dsn)
    options = check_options(backend, dict(options or {}))
    if Database.objects.filter(name=name).exists():
        raise Conflict(f"Database {name!r} exists.", "database_exists", {"database": name})
    check_file_free(name, backend, dsn)
    try:
        with transaction.atomic():
            database = Database.objects.create(
                name=name,
                backend=backend,
                dsn_sealed=seal_text(dsn) if dsn else "",
                options=options,
                owner=owner,
                owner_only=owner_only,
                publish_changes=publish_changes,
            )
    except IntegrityError:
        raise Conflict(f"Database {name!r} exists.", "database_exists", {"database": name}) from None
    _announce(name)
    return database


@transaction.atomic
def database_update(*, database: Database, **changes: Any) -> Database:
    """Change a database's DSN, options, confinement or change feed (its name and backend stay)."""
    if "dsn" in changes:
        dsn = check_dsn(database.backend, changes.pop("dsn"))
        check_file_free(database.name, database.backend, dsn)
        database.dsn_sealed = seal_text(dsn) if dsn else ""
    if "options" in changes:
        database.options = check_options(database.backend, dict(changes.pop("options") or {}))
    for key in ("owner_only", "publish_changes"):
        if key in changes:
            setattr(database, key, bool(changes.pop(key)))
    database.save()
    _announce(database.name)
    return database


@transaction.atomic
def database_delete(*, database: Database) -> None:
    """Forget a database.  A platform database's records go with it; an external database's
    tables stay where they are (the proxy never drops data it does not hold)."""
    name = database.name
    database.delete()
    _announce(name)


def table_ensure(*, database: Database | int, name: str) -> tuple[Table, bool]:
    """The table ``name`` (its storage created first); (table, created)."""
    names.TABLE.check(name, "table")
    database_id = database if isinstance(database, int) else database.pk
    found = Table.objects.filter(database_id=database_id, name=name).first()
    if found is not None:
        return found, False
    db = Database.objects.get(pk=database_id)
    backend = BACKENDS[db.backend](db.name, catalog.dsn_of(db), db.options)
    backend.create_table(TableRef(name, 0))  # idempotent: a race creates it once
    with transaction.atomic():
        try:
            with transaction.atomic():
                table = Table.objects.create(database_id=database_id, name=name)
        except IntegrityError:
            return Table.objects.get(database_id=database_id, name=name), False
        _announce(db.name)
    return table, True


def table_drop(*, table: Table) -> None:
    """Drop a table with its records (on every backend)."""
    database = table.database
    with transaction.atomic():
        # Locked first: a write adding a record to it waits (its foreign key check, at commit)
        # and is then refused as table_dropped, rather than committing between this drop's read
        # of the records and its delete (which then failed on the foreign key).
        if Table.objects.select_for_update().filter(pk=table.pk).first() is None:
            return  # dropped by another call meanwhile
        name = table.name
        table.delete()
        _announce(database.name)
    backend = BACKENDS[database.backend](database.name, catalog.dsn_of(database), database.options)
    backend.drop_table(TableRef(name, 0))


@transaction.atomic
def row_policy_create(*, database: Database, table: str, role: str, action: str, condition: str) -> RowPolicy:
    if table != "*":
        names.TABLE.check(table, "table")
    if action not in RowPolicy.Action.values:
        raise Invalid("action is read, write or *.", code="invalid_action")
    if not re.fullmatch(r"[-a-zA-Z0-9_]{1,100}", role):
        raise Invalid("A role is a slug (letters, digits, - and _).", code="invalid_role")
    check_condition(condition)
    policy = RowPolicy.objects.create(
        database=database, table=table, role=role, action=action, condition=condition
    )
    _announce(database.name)
    return policy


@transaction.atomic
def row_policy_delete(*, policy: RowPolicy) -> None:
    name = policy.database.name
    policy.delete()
    _announce(name)
