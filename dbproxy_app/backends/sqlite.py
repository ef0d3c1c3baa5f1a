"""The ``sqlite`` backend: a database's records in an SQLite file, a table per table.

The file lives in ``DB_SQLITE_DIR`` (by default ``<PLATFORM_VAR_DIR>/db``); a database's DSN is
only a file name inside it (no directories), so no caller can point the platform at another file.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from dbproxy_app.backends.base import (
    Backend,
    ConstraintViolation,
    DatabaseRefused,
    RecordExists,
    Session,
    TableRef,
    Unavailable,
)
from dbproxy_app.query.sql import SQLITE

log = logging.getLogger(__name__)
#: The constraint errors that mean an insert met an id already taken.
_ID_TAKEN = ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")
FILE_NAME = r"[A-Za-z0-9_-]{1,64}\.sqlite3?"


def directory() -> Path:
    return Path(settings.DB_SQLITE_DIR or Path(settings.VAR_DIR) / "db")


def file_name(database: str, dsn: str) -> str:
    """The file in :func:`directory` that keeps ``database``'s records: its DSN, or its name."""
    return dsn or f"{database}.sqlite3"


def _refused(database: str, exc: sqlite3.DatabaseError) -> DatabaseRefused:
    name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
    log.warning("db: database %r refused a statement: %s (%s)", database, exc, name)
    return DatabaseRefused(
        f"Database {database!r} answered an error ({name}).", details={"database": database, "error": name}
    )


#: The errors of a file that cannot answer for now (busy, locked, unreadable, full): 503.  Any
#: other is the file answering an error (a table dropped or altered outside the proxy, a damaged
#: file): 502, and retrying would not help.
_UNAVAILABLE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
    "SQLITE_INTERRUPT",
)


def _failed(database: str, exc: sqlite3.DatabaseError) -> Unavailable | DatabaseRefused:
    """What a statement's error is answered as; SQLite's own message goes to the log only."""
    name = getattr(exc, "sqlite_errorname", "")
    if isinstance(exc, sqlite3.OperationalError) and (not name or name.startswith(_UNAVAILABLE)):
        log.warning("db: database %r is unavailable: %s (%s)", database, exc, name or "no error name")
        return Unavailable(f"Database {database!r} is unavailable.", details={"database": database})
    return _refused(database, exc)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'  # names are [a-z0-9_] already; quoted all the same


class SqliteSession(Session):
    dialect = SQLITE

    def __init__(self, database: str, db: sqlite3.Connection) -> None:
        self.db = db
        super().__init__(database)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple], int]:
        try:
            cursor = self.db.execute(sql.replace("%s", "?"), list(params))
            return cursor.fetchall(), cursor.rowcount
        except sqlite3.IntegrityError as exc:
            if getattr(exc, "sqlite_errorname", "") in _ID_TAKEN:
                raise RecordExists("A record with this id already exists.") from exc
            raise ConstraintViolation(  # a trigger or constraint added outside the proxy
                "A constraint of the table refused the record.",
                details={"database": self.database, "error": getattr(exc, "sqlite_errorname", "")},
            ) from exc
        except sqlite3.DatabaseError as exc:  # busy or unreadable; a table altered outside the proxy
            raise _failed(self.database, exc) from exc

    def target(self, table: TableRef) -> tuple[str, str, list[Any]]:
        return quoted(table.name), "1 = 1", []


class SqliteBackend(Backend):
    name = "sqlite"

    @property
    def path(self) -> Path:
        return directory() / file_name(self.database, self.dsn)

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=settings.DB_STATEMENT_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise Unavailable(
                f"Database {self.database!r} is unavailable.", details={"database": self.database}
            ) from exc
        return db

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        db = self.connect()
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield SqliteSession(self.database, db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise _failed(self.database, exc) from exc
        finally:
            db.close()

    def create_table(self, table: TableRef) -> None:
        name = quoted(table.name)
        with self.session() as session:
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {name} (id TEXT PRIMARY KEY, created TEXT NOT NULL, "
                "updated TEXT NOT NULL, version INTEGER NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', "
                "data TEXT, bytes BLOB)"
            )
            for column in ("created", "updated", "version"):
                index = quoted(f"{table.name}_{column}")
                session.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {name} ({column}, id)")

    def drop_table(self, table: TableRef) -> None:
        with self.session() as session:
            session.execute(f"DROP TABLE IF EXISTS {quoted(table.name)}")
