"""The one small interface every backend implements, and the SQL all of them share.

A backend (:class:`Backend`) creates and drops a table's storage and opens a :class:`Session`:
one transaction on the database, committed when the ``with`` block ends and rolled back if it
raises.  Sessions read and write records with the SQL below; a backend only says how to
execute it (its driver), how to name a table (:meth:`Session.target`) and which
:class:`~dbproxy_app.query.sql.Dialect` its database speaks.

Statements are built from quoted identifiers (names of the strict grammar in
:mod:`dbproxy_app.names`, quoted by the backend) and the compiler's fixed fragments; every value
is a parameter (hence the ``noqa: S608`` below).

Adding a backend: subclass :class:`Backend` and :class:`Session`, register the backend's name in
:data:`dbproxy_app.backends.BACKENDS`, and run ``tests/dbproxy_app`` against it (the suite is
written once for every backend).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from dbproxy_app.encoding import encode_json
from dbproxy_app.query.ast import Group, Query
from dbproxy_app.query.sql import Columns, Compiler, Dialect, filter_sql
from platformsite.api import errors
from platformsite.api.errors import Conflict, PlatformError

_CHUNK = 500
#: Inserts of at least this many rows go through COPY where the database has it.
_COPY_FROM = 50


def _copy_cell(value: Any, times: dict[datetime, str]) -> str:
    """One value in PostgreSQL's COPY text format: ``\\N`` for NULL, backslash, tab, newline and
    carriage return escaped in text, ``bytea`` as ``\\x`` and hex, times in ISO 8601 with their
    offset."""
    kind = type(value)
    if value is None:
        return "\\N"
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if kind is int:
        return str(value)
    if kind is datetime:
        text = times.get(value)
        if text is None:
            text = times[value] = value.isoformat()
        return text
    if kind is bytes:
        return "\\\\x" + value.hex()
    raise TypeError(f"COPY text of a {kind.__name__}")


def copy_records(rows: Sequence[Row], leading: Sequence[Any] = (), per_write: int = 1000) -> Iterator[str]:
    """Records as COPY text lines of ``(*leading, id, created, updated, version, metadata, data,
    bytes)``, ``per_write`` rows a piece.  The JSON columns are this module's compact encodings,
    in which the encoder already escaped every control character: only a backslash needs
    escaping again.  Formatting the rows here costs a fraction of the driver's ``write_row``
    (which adapts each value on its own)."""
    times: dict[datetime, str] = {}
    prefix = "".join(_copy_cell(value, times) + "\t" for value in leading)
    lines: list[str] = []
    for row in rows:
        metadata, data = row.encoded()
        if "\\" in metadata:
            metadata = metadata.replace("\\", "\\\\")
        if data is None:
            data = "\\N"
        elif "\\" in data:
            data = data.replace("\\", "\\\\")
        record_id = row.id if _PLAIN_ID.fullmatch(row.id) else _copy_cell(row.id, times)
        created = times.get(row.created) or _copy_cell(row.created, times)
        updated = times.get(row.updated) or _copy_cell(row.updated, times)
        blob = "\\N" if row.bytes is None else "\\\\x" + row.bytes.hex()
        lines.append(
            f"{prefix}{record_id}\t{created}\t{updated}\t{row.version}\t{metadata}\t{data}\t{blob}\n"
        )
        if len(lines) == per_write:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


_PLAIN_ID = re.compile(r"[^\\\t\n\r]*")


class RecordExists(Conflict):
    """An insert met a record with the same id (the unique constraint said so)."""

    code = "record_exists"


class TableDropped(Conflict):
    """A write met its table dropped by another call while it ran (the platform backend's
    records refer to their table's row): nothing was written."""

    code = "table_dropped"


class Unavailable(errors.Unavailable):
    """The database behind a name cannot be reached (503 naming it, with ``Retry-After``); the
    others keep working."""

    code = "database_unavailable"


class DatabaseRefused(PlatformError):
    """The database answered with an error the proxy has no better answer for: its role lacks a
    privilege, a table was altered behind the proxy's back (502 naming the database and the
    SQLSTATE; the server's own message is logged, not answered)."""

    status = 502
    code = "database_error"


class ConstraintViolation(Conflict):
    """A constraint other than the id's (one an operator added to the table) refused a write."""

    code = "constraint_violation"


@dataclass
class Row:
    """A stored record."""

    id: str
    created: datetime
    updated: datetime
    version: int
    metadata: dict[str, str]
    data: Any = None
    bytes: bytes | None = None

    def encoded(self) -> tuple[str, str | None]:
        """(metadata, data) as compact JSON, encoded once per row (size checks and writes share it)."""
        cached = self.__dict__.get("_encoded")
        if cached is None:
            data = self.__dict__.get("_data_json")
            if data is None and self.data is not None:
                data = encode_json(self.data)
            cached = (encode_json(self.metadata), data)
            self.__dict__["_encoded"] = cached
        return cached

    def known_data_json(self, text: str | None) -> Row:
        """Say what ``data`` encodes to (a request's check already encoded it); returns the row."""
        if text is not None:
            self.__dict__["_data_json"] = text
        return self

    def fields(self) -> dict[str, Any]:
        """The record as queries and row policies see it."""
        return {
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            "version": self.version,
            "metadata": self.metadata,
            "data": self.data,
        }


@dataclass(frozen=True)
class TableRef:
    """A table as a backend needs it: its name and, for the platform backend, its row's id."""

    name: str
    pk: int


class Session:
    """One transaction on one database."""

    dialect: Dialect
    cols: Columns = Columns()
    #: Whether the driver answers JSON columns as their text (else as decoded values).
    json_as_text: bool = True

    def __init__(self, database: str) -> None:
        self.database = database

    @property
    def compiler(self) -> Compiler:
        """The query compiler (made on first use: a read by id needs none)."""
        found = self.__dict__.get("_compiler")
        if found is None:
            found = self.__dict__["_compiler"] = Compiler(self.dialect, self.cols)
        return found

    # --- what each backend provides ---------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[tuple], int]:
        """Run one statement: (rows fetched, rows affected)."""
        raise NotImplementedError

    def target(self, table: TableRef) -> tuple[str, str, list[Any]]:
        """(the quoted table, a condition scoping it to ``table``, its parameters)."""
        raise NotImplementedError

    def insert_scope(self, table: TableRef) -> tuple[list[str], list[Any]]:
        """Extra columns and values each inserted row carries (the platform's table id)."""
        return [], []

    def lock_suffix(self) -> str:
        return ""

    def estimate(self, sql: str, params: list[Any]) -> int | None:
        """The planner's row estimate for ``sql``, or None when the database has no planner to ask."""
        return None

    # --- shared SQL -------------------------------------------------------------------------------

    def _select_list(self) -> str:
        c = self.cols
        return ", ".join([c.id, c.created, c.updated, c.version, c.metadata, c.data, c.bytes])

    def decode(self, row: tuple) -> Row:
        record_id, created, updated, version, metadata, data, blob = row
        return Row(
            id=record_id,
            created=_datetime(created),
            updated=_datetime(updated),
            version=int(version),
            metadata=json.loads(metadata) if self.json_as_text else metadata,
            data=json.loads(data) if self.json_as_text and data is not None else data,
            bytes=bytes(blob) if blob is not None else None,
        )

    def fetch(self, table: TableRef, ids: list[str], *, lock: bool = False) -> dict[str, Row]:
        """The stored records among ``ids`` (locked for update where the database can)."""
        found: dict[str, Row] = {}
        name, scope, scope_params = self.target(table)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            if len(chunk) == 1:  # a read by id: no array to build
                in_sql, in_params = f"{self.cols.id} = %s", chunk
            else:
                in_sql, in_params = self.dialect.any_of(self.cols.id, chunk)
            rows, _ = self.execute(
                f"SELECT {self._select_list()} FROM {name} WHERE {scope} AND {in_sql}"  # noqa: S608
                f"{self.lock_suffix() if lock else ''}",
                [*scope_params, *in_params],
            )
            for row in rows:
                record = self.decode(row)
                found[record.id] = record
        return found

    def _values(self, row: Row) -> list[Any]:
        metadata, data = row.encoded()
        return [
            row.id,
            self.dialect.dt(row.created),
            self.dialect.dt(row.updated),
            row.version,
            metadata,
            data,
            row.bytes,
        ]

    def copy(self, name: str, columns: str, pieces: Iterator[str]) -> bool:
        """Write ``pieces`` of COPY text (:func:`copy_records`) where the driver can (False where
        it cannot)."""
        return False

    def insert(self, table: TableRef, rows: list[Row]) -> None:
        """Insert ``rows``: COPY for batches of at least ``_COPY_FROM`` where the database has it,
        multi-row INSERTs otherwise; a taken id raises :class:`RecordExists`."""
        name, _, _ = self.target(table)
        extra_cols, extra_params = self.insert_scope(table)
        c, j = self.cols, self.dialect.json_param()
        columns = ", ".join([*extra_cols, c.id, c.created, c.updated, c.version, c.metadata, c.data, c.bytes])
        if len(rows) >= _COPY_FROM and self.copy(name, columns, copy_records(rows, extra_params)):
            return
        one = "(" + ", ".join(["%s"] * (len(extra_cols) + 4) + [j, j, "%s"]) + ")"
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            params = [value for row in chunk for value in (*extra_params, *self._values(row))]
            values = ", ".join([one] * len(chunk))
            self.execute(f"INSERT INTO {name} ({columns}) VALUES {values}", params)  # noqa: S608

    def replace(self, table: TableRef, row: Row, expected_version: int) -> bool:
        """Store ``row`` over the stored version ``expected_version``; False if it moved on."""
        name, scope, scope_params = self.target(table)
        c, j = self.cols, self.dialect.json_param()
        values = self._values(row)
        _, affected = self.execute(
            f"UPDATE {name} SET {c.updated} = %s, {c.version} = %s, {c.metadata} = {j}, {c.data} = {j}, "  # noqa: S608
            f"{c.bytes} = %s WHERE {scope} AND {c.id} = %s AND {c.version} = %s",
            [
                values[2],
                row.version,
                values[4],
                values[5],
                values[6],
                *scope_params,
                row.id,
                expected_version,
            ],
        )
        return affected == 1

    def remove(self, table: TableRef, record_id: str, expected_version: int) -> bool:
        name, scope, scope_params = self.target(table)
        _, affected = self.execute(
            f"DELETE FROM {name} WHERE {scope} AND {self.cols.id} = %s AND {self.cols.version} = %s",  # noqa: S608
            [*scope_params, record_id, expected_version],
        )
        return affected == 1

    def query(self, table: TableRef, query: Query, extra: Group | None = None) -> list[Row]:
        """One page of ``query`` (and the row policy ``extra``), in its order, past its cursor."""
        sql, params = self.query_sql(table, query, extra)
        rows, _ = self.execute(sql, params)
        if query.order.key is None:
            return [self.decode(row) for row in rows]
        found = []
        for row in rows:  # the order's value (its text as the database has it) follows the fields
            record = self.decode(row[:-1])
            record.__dict__["order_value"] = row[-1]
            found.append(record)
        return found

    def query_sql(self, table: TableRef, query: Query, extra: Group | None = None) -> tuple[str, list[Any]]:
        """The statement of :meth:`query` and its parameters."""
        name, scope, scope_params = self.target(table)
        where, params = filter_sql(self.compiler, query, extra)
        order, expression = self.compiler.order(query)
        selected = self._select_list() + (f", {expression}" if query.order.key is not None else "")
        return (
            f"SELECT {selected} FROM {name} WHERE {scope} AND {where} "  # noqa: S608
            f"ORDER BY {order} LIMIT %s",
            [*scope_params, *params, query.limit + 1],
        )

    def count(self, table: TableRef, query: Query, extra: Group | None, mode: str, threshold: int) -> int:
        """How many records match (the cursor ignored): exact, planned or estimated."""
        name, scope, scope_params = self.target(table)
        where, params = self.compiler.where(query.where)
        if extra is not None:
            extra_sql, extra_params = self.compiler.where(extra)
            where, params = f"{where} AND {extra_sql}", [*params, *extra_params]
        body = f"FROM {name} WHERE {scope} AND {where}"
        if mode in ("planned", "estimated"):
            planned = self.estimate(f"SELECT 1 {body}", [*scope_params, *params])
            if planned is not None and (mode == "planned" or planned >= threshold):
                return planned
        rows, _ = self.execute(f"SELECT count(*) {body}", [*scope_params, *params])
        return int(rows[0][0])


def _datetime(value: Any) -> datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Backend:
    """Where a database's records live."""

    name = ""
    #: True when a session's transaction is the platform's own, so the change events it
    #: publishes commit (or roll back) with the records.
    shares_platform_transaction = False

    def __init__(self, database: str, dsn: str, options: dict[str, Any]) -> None:
        self.database, self.dsn, self.options = database, dsn, options

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction (``write=False``: one that only reads)."""
        raise NotImplementedError
        yield

    def create_table(self, table: TableRef) -> None:
        """Make ``table``'s storage exist (idempotent)."""

    def drop_table(self, table: TableRef) -> None:
        """Drop ``table``'s storage and records."""

    def check(self) -> None:
        """Raise :class:`Unavailable` if the database cannot be reached."""
        with self.session(write=False) as session:
            session.execute("SELECT 1")
