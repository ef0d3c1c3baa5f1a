"""The ``platform`` backend: records in the platform's own database (SQLite or PostgreSQL), through
the ORM.

Records are :class:`~dbproxy_app.models.Record` rows (its migrations and indexes, with a GIN index
on ``metadata`` on PostgreSQL), scoped by their table's id.  Reads, writes and deletes are
querysets; a query's filter, compiled by :mod:`dbproxy_app.query.sql` like every backend's,
joins the queryset as one ``RawSQL`` condition (its values parameters), and large inserts on
PostgreSQL go through ``COPY`` on Django's own connection.  A write session is a
``transaction.atomic()`` block, so the change events published in it commit or roll back with
the records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import BooleanField, F
from django.db.models.expressions import OrderBy, RawSQL

from dbproxy_app.backends.base import (
    _CHUNK,
    _COPY_FROM,
    Backend,
    RecordExists,
    Row,
    Session,
    TableDropped,
    TableRef,
    Unavailable,
)
from dbproxy_app.models import Record
from dbproxy_app.query.ast import Group, Query
from dbproxy_app.query.sql import Columns, SqliteDialect, dialect_for, filter_sql

_FIELDS = {"created": "created", "updated": "updated", "version": "version", "id": "record_id"}


class DjangoSqliteDialect(SqliteDialect):
    """SQLite as Django stores its datetimes (the ORM writes them; queries must compare alike)."""

    def dt(self, value: datetime) -> str:
        return connection.ops.adapt_datetimefield_value(value)


def _unavailable(database: str, exc: Exception) -> Unavailable:
    return Unavailable(f"Database {database!r} is unavailable.", details={"database": database})


class PlatformSession(Session):
    cols = Columns(id='"record_id"', bytes='"blob"')

    def __init__(self, database: str) -> None:
        self.dialect = (
            DjangoSqliteDialect() if connection.vendor == "sqlite" else dialect_for(connection.vendor)
        )
        super().__init__(database)

    def records(self, table: TableRef):
        return Record.objects.filter(table_id=table.pk)

    @staticmethod
    def row(record: Record) -> Row:
        return Row(
            id=record.record_id,
            created=record.created,
            updated=record.updated,
            version=record.version,
            metadata=record.metadata or {},
            data=record.data,
            bytes=bytes(record.blob) if record.blob is not None else None,
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple], int]:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, list(params))
                rows = cursor.fetchall() if cursor.description else []
                return rows, cursor.rowcount
        except OperationalError as exc:
            raise _unavailable(self.database, exc) from exc

    def target(self, table: TableRef) -> tuple[str, str, list[Any]]:
        return connection.ops.quote_name(Record._meta.db_table), '"table_id" = %s', [table.pk]

    def insert_scope(self, table: TableRef) -> tuple[list[str], list[Any]]:
        return ['"table_id"'], [table.pk]

    # --- records through the ORM ---------------------------------------------------------------------

    def fetch(self, table: TableRef, ids: list[str], *, lock: bool = False) -> dict[str, Row]:
        found: dict[str, Row] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            records = (
                self.records(table).filter(record_id=chunk[0])
                if len(chunk) == 1
                else (self.records(table).filter(record_id__in=chunk))
            )
            if lock and connection.vendor == "postgresql":
                records = records.select_for_update()
            for record in records:
                found[record.record_id] = self.row(record)
        return found

    def insert(self, table: TableRef, rows: list[Row]) -> None:
        if connection.vendor == "postgresql" and len(rows) >= _COPY_FROM:
            super().insert(table, rows)  # COPY, below
            return
        records = [
            Record(
                table_id=table.pk,
                record_id=row.id,
                created=row.created,
                updated=row.updated,
                version=row.version,
                metadata=row.metadata,
                data=row.data,
                blob=row.bytes,
            )
            for row in rows
        ]
        try:
            with transaction.atomic():
                Record.objects.bulk_create(records, batch_size=_CHUNK)
        except IntegrityError as exc:
            raise _insert_refused(exc) from exc

    def copy(self, name: str, columns: str, pieces: Iterator[str]) -> bool:
        try:
            with (
                connection.cursor() as wrapper,
                connection.wrap_database_errors,  # psycopg's own cursor: its errors made Django's
                wrapper.cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy,
            ):
                for piece in pieces:
                    copy.write(piece)
        except IntegrityError as exc:
            raise _insert_refused(exc) from exc
        return True

    def replace(self, table: TableRef, row: Row, expected_version: int) -> bool:
        changed = (
            self.records(table)
            .filter(record_id=row.id, version=expected_version)
            .update(
                updated=row.updated, version=row.version, metadata=row.metadata, data=row.data, blob=row.bytes
            )
        )
        return changed == 1

    def remove(self, table: TableRef, record_id: str, expected_version: int) -> bool:
        deleted, _ = self.records(table).filter(record_id=record_id, version=expected_version).delete()
        return deleted == 1

    def _filtered(self, table: TableRef, query: Query, extra: Group | None, *, keyset: bool):
        if keyset:
            where, params = filter_sql(self.compiler, query, extra)
        else:
            where, params = self.compiler.where(query.where)
            if extra is not None:
                extra_sql, extra_params = self.compiler.where(extra)
                where, params = f"{where} AND {extra_sql}", [*params, *extra_params]
        # the compiler's fixed fragments and quoted names; every value is a parameter
        return self.records(table).filter(RawSQL(where, params, output_field=BooleanField()))  # noqa: S611

    def query(self, table: TableRef, query: Query, extra: Group | None = None) -> list[Row]:
        order = query.order
        records = self._filtered(table, query, extra, keyset=True)
        if order.key is not None:
            # the compiler's expression: quoted names and the grammar's checked key as a literal
            expression = RawSQL(self.compiler.order_expression(order.key), [])  # noqa: S611
            records = records.annotate(order_value=expression)
            nulls = {"nulls_first": True} if order.nulls_come_first else {"nulls_last": True}
            field = OrderBy(F("order_value"), descending=order.descending, **nulls)
        else:
            field = OrderBy(F(_FIELDS[order.field]), descending=order.descending)
        tiebreak = OrderBy(F("record_id"), descending=order.descending)
        found = []
        for record in records.order_by(field, tiebreak)[: query.limit + 1]:
            row = self.row(record)
            if order.key is not None:
                row.__dict__["order_value"] = record.order_value
            found.append(row)
        return found

    def count(self, table: TableRef, query: Query, extra: Group | None, mode: str, threshold: int) -> int:
        records = self._filtered(table, query, extra, keyset=False)
        if mode in ("planned", "estimated") and connection.vendor == "postgresql":
            plan = records.explain(format="json")
            planned = int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
            if mode == "planned" or planned >= threshold:
                return planned
        return records.count()


def _insert_refused(exc: IntegrityError) -> RecordExists | TableDropped:
    """What a refused insert means: the table's row gone (another call dropped the table: the
    foreign key refused it) or, the only other constraint an insert can meet, a taken id."""
    cause = exc.__cause__
    if getattr(getattr(cause, "diag", None), "sqlstate", None) == "23503" or "FOREIGN KEY" in str(exc):
        return TableDropped("The table was dropped while this write ran: nothing was written.")
    return RecordExists("A record with this id already exists.")


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
            raise _insert_refused(exc) from exc
        except DatabaseError as exc:
            if isinstance(exc, OperationalError):
                raise _unavailable(self.database, exc) from exc
            raise
