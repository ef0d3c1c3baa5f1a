"""The catalog: each database's settings, tables and row policies, kept per process.

A record call needs its database (backend, DSN, options), its table and the row policies that
apply; reading them from the platform's database on each call would cost three queries.  This
process keeps them per database, dropped on the ``db.catalog`` invalidation topic that every
change to a database, table or row policy announces after commit (see
:mod:`platformsite.invalidation`), and trusted for at most a second when announcements may be
missed.  The DSN is opened (decrypted) here, in memory only: it is never served nor logged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import InvalidToken

from dbproxy_app.backends import BACKENDS, Backend, TableRef
from dbproxy_app.discovered import from_discovery
from dbproxy_app.models import Database, RowPolicy, Table
from platformsite import invalidation, localstate
from platformsite.api.errors import NotFound
from platformsite.sealing import open_text

TOPIC = "db.catalog"
#: Seconds a copy is used without an announcement when this process may miss them.
UNTRUSTED_SECONDS = 1.0


@dataclass(frozen=True)
class PolicySpec:
    table: str
    role: str
    action: str
    condition: str


@dataclass
class Entry:
    """One database as record calls need it."""

    pk: int
    name: str
    backend_name: str
    dsn: str = field(repr=False)
    options: dict[str, Any]
    owner: str
    owner_only: bool
    publish_changes: bool
    tables: dict[str, int]
    policies: tuple[PolicySpec, ...]
    loaded: float
    _backend: Backend | None = field(default=None, repr=False)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = BACKENDS[self.backend_name](self.name, self.dsn, self.options)
        return self._backend

    def table(self, name: str) -> TableRef:
        pk = self.tables.get(name)
        if pk is None:
            raise NotFound(
                f"Database {self.name!r} has no table {name!r}.",
                "table_not_found",
                {"database": self.name, "table": name},
            )
        return TableRef(name, pk)


_entries: dict[str, Entry] = {}
_stats = localstate.register_cache("db.catalog", size=lambda: len(_entries), reset=_entries.clear)


def _forget(name: str) -> None:
    _entries.pop(name, None)


invalidation.register(TOPIC, _forget, _entries.clear)


def dsn_of(database: Database) -> str:
    if not database.dsn_sealed:
        return ""
    try:
        return open_text(database.dsn_sealed)
    except InvalidToken:
        return ""  # sealed under another SECRET_KEY: the database answers 503 until its DSN is set again


def _load(name: str) -> Entry | None:
    database = Database.objects.filter(name=name).first()
    if database is None:
        database = from_discovery(name)
    if database is None:
        return None
    tables = dict(Table.objects.filter(database=database).values_list("name", "id"))
    policies = tuple(
        PolicySpec(*row)
        for row in RowPolicy.objects.filter(database=database).values_list(
            "table", "role", "action", "condition"
        )
    )
    return Entry(
        pk=database.pk,
        name=database.name,
        backend_name=database.backend,
        dsn=dsn_of(database),
        options=dict(database.options or {}),
        owner=database.owner,
        owner_only=database.owner_only,
        publish_changes=database.publish_changes,
        tables=tables,
        policies=policies,
        loaded=time.monotonic(),
    )


def entry_warm(name: str) -> Entry | None:
    """The database as this process holds it, or None when using it would need a query."""
    found = _entries.get(name)
    if found is not None and time.monotonic() - found.loaded < invalidation.trust_seconds(UNTRUSTED_SECONDS):
        _stats.hits += 1
        return found
    return None


def entry(name: str) -> Entry:
    """The database ``name`` as this process knows it (404 ``database_not_found`` if none)."""
    found = _entries.get(name)
    now = time.monotonic()
    if found is not None and now - found.loaded < invalidation.trust_seconds(UNTRUSTED_SECONDS):
        _stats.hits += 1
        return found
    _stats.misses += 1
    taken = invalidation.epoch()
    found = _load(name)
    if found is None:
        _entries.pop(name, None)
        raise NotFound(f"No database named {name!r}.", "database_not_found", {"database": name})
    if invalidation.still(taken):
        _entries[name] = found
    return found


def changed(name: str) -> None:
    """Announce (after commit) that database ``name``, a table or a row policy of it changed."""
    invalidation.announce(TOPIC, name)
