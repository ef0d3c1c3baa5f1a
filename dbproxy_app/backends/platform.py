"""The ``platform`` backend: records in the platform's own database (SQLite or PostgreSQL).

Records share the ``dbproxy_app_record`` table (the :class:`~dbproxy_app.models.Record` model,
its migrations and indexes, with a GIN index on ``metadata`` on PostgreSQL), scoped by their
table's id.  A session is a Django ``transaction.atomic()`` block on the default connection, so
the change events published in it commit or roll back with the records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction

from dbproxy_app.backends.base import Backend, RecordExists, Session, TableRef, Unavailable
from dbproxy_app.models import Record
from dbproxy_app.query.sql import Columns, dialect_for


class PlatformSession(Session):
    cols = Columns(id='"record_id"', bytes='"blob"')

    def __init__(self, database: str) -> None:
        self.dialect = dialect_for(connection.vendor)
        self.table_sql = connection.ops.quote_name(Record._meta.db_table)
        super().__init__(database)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple], int]:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, list(params))
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.rowcount
        except IntegrityError as exc:
            raise RecordExists("A record with this id already exists.") from exc
        except OperationalError as exc:
            raise Unavailable(
                f"Database {self.database!r} is unavailable.", details={"database": self.database}
            ) from exc

    def copy(self, name: str, columns: str, rows: Iterator[tuple]) -> bool:
        if connection.vendor != "postgresql":
            return False
        import psycopg

        try:
            with (
                connection.cursor() as wrapper,
                wrapper.cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation as exc:
            raise RecordExists("A record with this id already exists.") from exc
        return True

    def target(self, table: TableRef) -> tuple[str, str, list[Any]]:
        return self.table_sql, '"table_id" = %s', [table.pk]

    def insert_scope(self, table: TableRef) -> tuple[list[str], list[Any]]:
        return ['"table_id"'], [table.pk]

    def lock_suffix(self) -> str:
        return " FOR UPDATE" if connection.vendor == "postgresql" else ""

    def estimate(self, sql: str, params: list[Any]) -> int | None:
        if connection.vendor != "postgresql":
            return None
        rows, _ = self.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = rows[0][0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])


class PlatformBackend(Backend):
    name = "platform"
    shares_platform_transaction = True

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        try:
            if not write:  # one statement: autocommit, no BEGIN and COMMIT round trips
                yield PlatformSession(self.database)
                return
            with transaction.atomic():
                yield PlatformSession(self.database)
        except IntegrityError as exc:  # a deferred constraint, at commit
            raise RecordExists("A record with this id already exists.") from exc
        except DatabaseError as exc:
            if isinstance(exc, OperationalError):
                raise Unavailable(
                    f"Database {self.database!r} is unavailable.", details={"database": self.database}
                ) from exc
            raise
