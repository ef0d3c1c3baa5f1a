"""The ``postgresql`` backend: records in an external PostgreSQL, reached through a pool.

Each (database, table) is a table ``<schema>.<table>`` (the schema is the database's name unless
its options name another) with ``metadata jsonb`` under a GIN index (``jsonb_path_ops``: the
containment a metadata equality compiles to) and ``data jsonb``.  Names are checked by the
strict grammar of :mod:`dbproxy_app.names` and quoted with ``psycopg.sql.Identifier`` all the
same; values are always parameters.

One ``psycopg_pool.ConnectionPool`` per database and DSN (at most ``pool_max`` connections, a
wait of ``DB_POOL_TIMEOUT_SECONDS``), each connection with the database's
``statement_timeout``.  A database that is down or slow is answered 503 naming it, while the
others keep working.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import psycopg
from django.conf import settings
from psycopg import errors, pq, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from dbproxy_app.backends.base import (
    Backend,
    ConstraintViolation,
    DatabaseRefused,
    RecordExists,
    Session,
    TableRef,
    Unavailable,
)
from dbproxy_app.query.sql import POSTGRES
from platformsite import localstate
from platformsite.db import Breaker, DatabaseDown, reachable, silent, stalls

log = logging.getLogger(__name__)
_pools: dict[str, DatabasePool] = {}
_pools_lock = threading.Lock()
#: Quoted ``schema.table`` names by (schema, table).
_quoted: dict[tuple[str, str], str] = {}


def _close_all() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close(timeout=1)


_stats = localstate.register_cache("db.pools", size=lambda: len(_pools), reset=_close_all)


class DatabasePool(ConnectionPool):
    """A database's pool, and its breaker: a database found unreachable (a connection refused,
    timed out or not let in) after a request waited the whole ``DB_POOL_TIMEOUT_SECONDS`` for a
    connection is answered 503 at once for ``DB_DOWN_SECONDS``, unless the pool reconnected
    meanwhile, so that requests for a database that is down do not hold the platform's worker
    threads (which every service shares) for seconds each."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.breaker = Breaker(settings.DB_DOWN_SECONDS)


def _unavailable(database: str, exc: Exception) -> Unavailable:
    if isinstance(exc, errors.QueryCanceled):
        return Unavailable(
            f"Database {database!r} did not answer within its statement timeout.",
            code="database_timeout",
            details={"database": database},
        )
    return Unavailable(f"Database {database!r} is unavailable.", details={"database": database})


def _refused(database: str, exc: psycopg.Error) -> Exception:
    """What an error of the database means for the caller (a 4xx or 5xx naming the database,
    never an unhandled 500)."""
    if isinstance(exc, errors.UniqueViolation):
        return RecordExists("A record with this id already exists.")
    if isinstance(exc, (psycopg.OperationalError, errors.QueryCanceled, errors.UndefinedTable)):
        return _unavailable(database, exc)
    state = exc.sqlstate or ""
    details = {"database": database, "sqlstate": state}
    if isinstance(exc, psycopg.IntegrityError):
        details["constraint"] = exc.diag.constraint_name or ""
        return ConstraintViolation("A constraint of the table refused the record.", details=details)
    log.warning(
        "db: database %r refused a statement: %s (SQLSTATE %s)", database, exc.diag.message_primary, state
    )
    if isinstance(exc, errors.InsufficientPrivilege):
        message = f"Database {database!r} refused the proxy's role a privilege it needs (see its grants)."
    else:
        message = f"Database {database!r} answered an error (SQLSTATE {state})."
    return DatabaseRefused(message, details=details)


class PostgresSession(Session):
    dialect = POSTGRES
    json_as_text = False  # psycopg decodes jsonb

    def __init__(self, database: str, conn: psycopg.Connection, schema: str) -> None:
        self.conn, self.schema = conn, schema
        super().__init__(database)

    def execute(self, query: str, params: Sequence[Any] = ()) -> tuple[list[tuple], int]:
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(query, list(params) or None)
                # The result's status, not ``cursor.description``: that builds a Column object per
                # column on every call (a tenth of a read by id's CPU).
                result = cursor.pgresult
                returned = result is not None and result.status == pq.ExecStatus.TUPLES_OK
                return (cursor.fetchall() if returned else []), cursor.rowcount
        except psycopg.Error as exc:
            raise _refused(self.database, exc) from exc

    def copy(self, name: str, columns: str, pieces: Iterator[str]) -> bool:
        try:
            with self.conn.cursor() as cursor, cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                for piece in pieces:
                    copy.write(piece)
        except psycopg.Error as exc:
            raise _refused(self.database, exc) from exc
        return True

    def identifier(self, *parts: str) -> str:
        return sql.Identifier(*parts).as_string(self.conn)

    def target(self, table: TableRef) -> tuple[str, str, list[Any]]:
        key = (self.schema, table.name)
        quoted = _quoted.get(key)
        if quoted is None:  # the same text for every connection (UTF-8): quoted once a process
            quoted = self.identifier(self.schema, table.name)
            if len(_quoted) < 10_000:
                _quoted[key] = quoted
        return quoted, "TRUE", []

    def lock_suffix(self) -> str:
        return " FOR UPDATE"

    def estimate(self, query: str, params: list[Any]) -> int | None:
        rows, _ = self.execute(f"EXPLAIN (FORMAT JSON) {query}", params)
        plan = rows[0][0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])


class PostgresBackend(Backend):
    name = "postgresql"

    @property
    def schema(self) -> str:
        return self.options.get("schema") or self.database

    def pool(self) -> DatabasePool:
        found = self.__dict__.get("_pool")
        if found is not None and not found.closed:
            _stats.hits += 1
            return found
        found = self.__dict__["_pool"] = self._pool()
        return found

    def _pool(self) -> DatabasePool:
        size = max(1, min(int(self.options.get("pool_max") or settings.DB_POOL_MAX), settings.DB_POOL_MAX))
        timeout = int(self.options.get("statement_timeout_ms") or settings.DB_STATEMENT_TIMEOUT_MS)
        key = hashlib.sha256(f"{self.database}|{self.dsn}|{size}|{timeout}".encode()).hexdigest()
        pool = _pools.get(key)
        if pool is not None:
            _stats.hits += 1
            return pool
        _stats.misses += 1
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                for old_key in [k for k, p in _pools.items() if p.name == self.database]:
                    _pools.pop(old_key).close(timeout=0)  # the DSN or limits changed
                pool = DatabasePool(
                    self.dsn,
                    min_size=0,
                    max_size=size,
                    timeout=settings.DB_POOL_TIMEOUT_SECONDS,
                    name=self.database,
                    kwargs={
                        "connect_timeout": settings.DB_CONNECT_TIMEOUT_SECONDS,
                        "options": f"-c statement_timeout={timeout}",
                        "autocommit": True,  # a read is one statement; writes open a transaction
                    },
                    open=True,
                )
                _pools[key] = pool
        return pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection the server has not ended.  Once a database restarts or fails over,
        every idle connection in the pool is dead: each is replaced here rather than failing one
        request with a 503."""
        pool = self.pool()
        conn = self._getconn(pool)
        stalls.watch(
            conn, pool.breaker, partial(silent, self.dsn, connect_timeout=settings.DB_CONNECT_TIMEOUT_SECONDS)
        )
        try:
            with conn:  # commits, or rolls back on an error, as pool.connection() does
                yield conn
        finally:
            stalls.forget(conn)
            pool.putconn(conn)

    def _getconn(self, pool: DatabasePool) -> psycopg.Connection:
        try:
            probe = partial(reachable, self.dsn, connect_timeout=settings.DB_CONNECT_TIMEOUT_SECONDS)
            return pool.breaker.getconn(pool, pool.getconn, probe)
        except DatabaseDown as exc:
            raise Unavailable(
                f"Database {self.database!r} is unavailable (it could not be reached just now).",
                details={"database": self.database},
                retry_after=exc.retry_after,
            ) from None

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        try:
            with self.connection() as conn:
                if not write:  # one statement, in autocommit: no BEGIN and COMMIT round trips
                    yield PostgresSession(self.database, conn, self.schema)
                    return
                with conn.transaction():
                    yield PostgresSession(self.database, conn, self.schema)
        except PoolTimeout as exc:
            raise _unavailable(self.database, exc) from exc
        except psycopg.Error as exc:  # at BEGIN or COMMIT (a deferred constraint)
            raise _refused(self.database, exc) from exc

    def create_table(self, table: TableRef) -> None:
        with self.session() as session:
            schema, name = session.identifier(self.schema), session.identifier(self.schema, table.name)
            session.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            session.execute(
                f'CREATE TABLE IF NOT EXISTS {name} (id text COLLATE "C" PRIMARY KEY, '
                "created timestamptz NOT NULL, updated timestamptz NOT NULL, version bigint NOT NULL, "
                "metadata jsonb NOT NULL DEFAULT '{}', data jsonb, bytes bytea)"
            )
            gin = session.identifier(f"{table.name}_metadata")
            session.execute(f"CREATE INDEX IF NOT EXISTS {gin} ON {name} USING gin (metadata jsonb_path_ops)")
            for column in ("created", "updated", "version"):
                index = session.identifier(f"{table.name}_{column}")
                session.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {name} ({column}, id)")

    def drop_table(self, table: TableRef) -> None:
        with self.session() as session:
            session.execute(f"DROP TABLE IF EXISTS {session.identifier(self.schema, table.name)}")
