"""Queries compiled to SQL for PostgreSQL and SQLite: every value a parameter, never a literal.

The same compiler serves the three backends (the platform's own database, an external
PostgreSQL, an SQLite file); a :class:`Dialect` says how each backend spells JSON access.
Metadata equality on PostgreSQL is containment (``metadata @> '{"k": "v"}'``), which the GIN
index serves; nothing ever matches ``LIKE`` against serialized JSON.  ``like`` patterns are
escaped (``%``, ``_`` and ``\\`` are literal; ``*`` is the wildcard) for ``LIKE ... ESCAPE``, or
turned into ``GLOB`` patterns on SQLite (case-sensitive, as PostgreSQL's ``LIKE`` is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbproxy_app import names
from dbproxy_app.encoding import encode_json
from dbproxy_app.query.ast import Cond, Field, Group, Query

#: a data path step PostgreSQL's ``#>`` would take as an array index
_INDEX = re.compile(r"-?[0-9]+")
_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Columns:
    """The quoted column names of a backend's record table."""

    id: str = '"id"'
    created: str = '"created"'
    updated: str = '"updated"'
    version: str = '"version"'
    metadata: str = '"metadata"'
    data: str = '"data"'
    bytes: str = '"bytes"'


class Dialect:
    """How one kind of database spells what a query needs."""

    vendor = ""

    def dt(self, value: datetime) -> Any:
        return value

    def json_param(self) -> str:
        return "%s"

    def meta_text(self, cols: Columns, key: str) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def meta_eq(self, cols: Columns, key: str, value: str) -> tuple[str, list[Any]]:
        sql, params = self.meta_text(cols, key)
        return f"{sql} = %s", [*params, value]

    def data_text(self, cols: Columns, path: tuple[str, ...]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def json_eq(self, cols: Columns, path: tuple[str, ...], value: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def json_number(self, cols: Columns, path: tuple[str, ...], op: str, value: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def json_is(self, cols: Columns, path: tuple[str, ...], value: bool) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def ordered_text(self, sql: str) -> str:
        """A text expression compared by code point (as Python compares strings)."""
        return sql

    def like(self, sql: str, pattern: str, ignore_case: bool) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def any_of(self, sql: str, values: list[Any]) -> tuple[str, list[Any]]:
        return f"{sql} IN ({', '.join(['%s'] * len(values))})", list(values)


class PostgresDialect(Dialect):
    vendor = "postgresql"

    def json_param(self) -> str:
        return "%s::jsonb"

    def meta_text(self, cols, key):
        return f"({cols.metadata} ->> %s)", [key]

    def meta_eq(self, cols, key, value):
        # false (not unknown) where the key is missing: only used where no negation encloses it
        return f"{cols.metadata} @> %s::jsonb", [json.dumps({key: value})]

    def _objects(self, cols: Columns, path: tuple[str, ...]) -> tuple[str, list[Any]]:
        """``#>`` takes a step spelt as an integer (``0``, ``-1``) as an index into an array, where
        SQLite and the evaluator take every step as an object's key: such a step answers only
        where its parent is an object (a guard, "TRUE" for paths without one, so that expression
        indexes still match them)."""
        guards = [i for i, step in enumerate(path) if _INDEX.fullmatch(step)]
        if not guards:
            return "TRUE", []
        sql = " AND ".join(f"jsonb_typeof({cols.data} #> %s::text[]) = 'object'" for _ in guards)
        return f"({sql})", [list(path[:i]) for i in guards]

    def _guarded(self, cols, path, sql: str, params: list[Any]) -> tuple[str, list[Any]]:
        guard, guard_params = self._objects(cols, path)
        if not guard_params:
            return sql, params
        return f"(CASE WHEN {guard} THEN {sql} END)", [*guard_params, *params]

    def data_text(self, cols, path):
        return self._guarded(cols, path, f"({cols.data} #>> %s::text[])", [list(path)])

    def json_eq(self, cols, path, value):
        sql = f"(({cols.data} #> %s::text[]) = %s::jsonb)"
        return self._guarded(cols, path, sql, [list(path), json.dumps(value)])

    def json_number(self, cols, path, op, value):
        guard, guard_params = self._objects(cols, path)
        guard = "" if not guard_params else f"{guard} AND "
        return (
            f"CASE WHEN {guard}jsonb_typeof({cols.data} #> %s::text[]) = 'number' "
            f"THEN ({cols.data} #>> %s::text[])::numeric {_COMPARE[op]} %s END",
            [*guard_params, list(path), list(path), value],
        )

    def json_is(self, cols, path, value):
        sql, params = self._guarded(
            cols, path, f"(({cols.data} #> %s::text[]) = %s::jsonb)", [list(path), json.dumps(value)]
        )
        return f"COALESCE({sql}, false)", params

    def ordered_text(self, sql):
        return f'({sql} COLLATE "C")'

    def like(self, sql, pattern, ignore_case):
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        return f"{sql} {'ILIKE' if ignore_case else 'LIKE'} %s ESCAPE '\\'", [escaped]

    def any_of(self, sql, values):
        return f"{sql} = ANY(%s)", [list(values)]


def _json_path(path: tuple[str, ...]) -> str:
    return "$" + "".join(f'."{step}"' for step in path)  # steps are [A-Za-z0-9_-]: nothing to escape


class SqliteDialect(Dialect):
    """SQLite's JSON1 functions; datetimes are stored as UTC text that sorts as it compares."""

    vendor = "sqlite"

    def dt(self, value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def meta_text(self, cols, key):
        return f"json_extract({cols.metadata}, %s)", [_json_path((key,))]

    def data_text(self, cols, path):
        p = _json_path(path)
        return (
            f"(CASE json_type({cols.data}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"WHEN 'null' THEN NULL ELSE CAST(json_extract({cols.data}, %s) AS TEXT) END)",
            [p, p],
        )

    def _typed(self, cols, path, test: str, params: list[Any]) -> tuple[str, list[Any]]:
        p = _json_path(path)
        return f"(CASE WHEN json_type({cols.data}, %s) IS NULL THEN NULL ELSE ({test}) END)", [p, *params]

    def json_eq(self, cols, path, value):
        p = _json_path(path)
        kind = f"json_type({cols.data}, %s)"
        extract = f"json_extract({cols.data}, %s)"
        if value is None:
            return self._typed(cols, path, f"{kind} = 'null'", [p])
        if isinstance(value, bool):
            return self._typed(cols, path, f"{kind} = %s", [p, "true" if value else "false"])
        if isinstance(value, int | float):
            return self._typed(cols, path, f"{kind} IN ('integer', 'real') AND {extract} = %s", [p, p, value])
        if isinstance(value, str):
            return self._typed(cols, path, f"{kind} = 'text' AND {extract} = %s", [p, p, value])
        compact = encode_json(value)  # as records are stored: keys sorted, text unescaped
        return self._typed(
            cols, path, f"{kind} IN ('object', 'array') AND {extract} = json(%s)", [p, p, compact]
        )

    def json_number(self, cols, path, op, value):
        p = _json_path(path)
        return (
            f"CASE WHEN json_type({cols.data}, %s) IN ('integer', 'real') "
            f"THEN json_extract({cols.data}, %s) {_COMPARE[op]} %s END",
            [p, p, value],
        )

    def json_is(self, cols, path, value):
        return f"COALESCE(json_type({cols.data}, %s) = %s, 0)", [
            _json_path(path),
            "true" if value else "false",
        ]

    def like(self, sql, pattern, ignore_case):
        glob = "".join({"?": "[?]", "[": "[[]"}.get(char, char) for char in pattern)
        if ignore_case:
            return f"lower({sql}) GLOB lower(%s)", [glob]
        return f"{sql} GLOB %s", [glob]


POSTGRES = PostgresDialect()
SQLITE = SqliteDialect()


def dialect_for(vendor: str) -> Dialect:
    return POSTGRES if vendor == "postgresql" else SQLITE


class Compiler:
    """Compiles conditions for one dialect and column layout."""

    def __init__(self, dialect: Dialect, cols: Columns) -> None:
        self.dialect, self.cols = dialect, cols

    def expression(self, field: Field) -> tuple[str, list[Any]]:
        if field.kind == "meta":
            return self.dialect.meta_text(self.cols, field.key)
        if field.kind == "data":
            return self.dialect.data_text(self.cols, field.path)
        return getattr(self.cols, field.kind), []

    def value(self, field: Field, value: Any) -> Any:
        return self.dialect.dt(value) if field.kind in ("created", "updated") else value

    def condition(self, cond: Cond, positive: bool = True) -> tuple[str, list[Any]]:
        """``cond`` in SQL; ``positive`` when no negation encloses it, so that false and unknown
        select alike and metadata equality may be the containment the GIN index serves."""
        field, op, value, d = cond.field, cond.op, cond.value, self.dialect
        if op == "in" and not value:
            return "(1 = 0)", []
        if field.json:
            if op == "is":
                if value is None:
                    sql, params = d.data_text(self.cols, field.path)
                    return f"({sql} IS NULL)", params
                return d.json_is(self.cols, field.path, value)
            if op in ("eq", "neq"):
                sql, params = d.json_eq(self.cols, field.path, value)
                return (sql, params) if op == "eq" else (f"(NOT {sql})", params)
            if op == "in":
                parts = [d.json_eq(self.cols, field.path, item) for item in value]
                return "(" + " OR ".join(p[0] for p in parts) + ")", [x for p in parts for x in p[1]]
            return d.json_number(self.cols, field.path, op, value)
        if op == "eq" and field.kind == "meta" and positive and not cond.negate:
            return d.meta_eq(self.cols, field.key, value)
        sql, params = self.expression(field)
        if op == "is":
            return f"({sql} IS NULL)", params
        if op in ("like", "ilike"):
            like_sql, like_params = d.like(sql, value, op == "ilike")
            return f"({like_sql})", params + like_params
        if op == "in":
            in_sql, in_params = d.any_of(sql, [self.value(field, item) for item in value])
            return f"({in_sql})", params + in_params
        if op not in ("eq", "neq") and field.kind in ("id", "meta", "data"):
            sql = d.ordered_text(sql)
        return f"({sql} {_COMPARE[op]} %s)", [*params, self.value(field, value)]

    def where(self, node: Any, positive: bool = True) -> tuple[str, list[Any]]:
        if isinstance(node, Cond):
            sql, params = self.condition(node, positive)
        else:
            parts = [self.where(item, positive and not node.negate) for item in node.items]
            if not parts:
                sql, params = ("(1 = 1)" if node.kind == "and" else "(1 = 0)"), []
            else:
                joiner = " AND " if node.kind == "and" else " OR "
                sql = "(" + joiner.join(p[0] for p in parts) + ")"
                params = [x for p in parts for x in p[1]]
        return (f"(NOT {sql})", params) if node.negate else (sql, params)

    def order_expression(self, field: Field) -> str:
        """The text a ``meta.<key>`` or ``data-><path>`` order sorts by (code point order), its key
        or path written into the SQL as a literal rather than a parameter: an expression index
        on the same expression (``((metadata ->> 'env') COLLATE "C")``) then serves the order.
        The key and steps are names of the strict grammar (letters, digits, ``_``, ``:`` and
        ``-``), checked again here, with quotes doubled all the same."""
        sql, params = self.expression(field)
        for part in (field.key,) if field.kind == "meta" else field.path:
            grammar = names.META_KEY if field.kind == "meta" else names.DATA_KEY
            if not grammar.matches(part):
                raise ValueError(f"not an orderable name: {part!r}")
        pieces = sql.split("%s")
        if len(pieces) != len(params) + 1:
            raise ValueError("an order expression has one parameter a placeholder")
        written = pieces[0]
        for param, piece in zip(params, pieces[1:], strict=True):
            text = "{" + ",".join(param) + "}" if isinstance(param, list) else str(param)
            written += "'" + text.replace("'", "''") + "'" + piece
        return self.dialect.ordered_text(written)

    def order(self, query: Query) -> tuple[str, str]:
        """(the ORDER BY clause, the expression the cursor follows)."""
        order = query.order
        direction = "DESC" if order.descending else "ASC"
        if order.key is not None:
            expression = self.order_expression(order.key)
            nulls = "FIRST" if order.nulls_come_first else "LAST"
            return f"{expression} {direction} NULLS {nulls}, {self.cols.id} {direction}", expression
        column = getattr(self.cols, order.field)
        return f"{column} {direction}, {self.cols.id} {direction}", column

    def keyset(self, query: Query) -> tuple[str, list[Any]]:
        """The condition past the cursor (a row comparison both databases index), or none.  On a
        ``meta``/``data`` order the value may be NULL: rows past a value are the greater (or
        lesser) values and, when nulls come last, every NULL; rows past a NULL are the NULLs of
        greater (lesser) id and, when nulls come first, every value."""
        if query.after is None:
            return "", []
        order = query.order
        value, record_id = query.after
        sign = "<" if order.descending else ">"
        _, column = self.order(query)
        if order.key is not None:
            if value is None:
                tail = f" OR {column} IS NOT NULL" if order.nulls_come_first else ""
                return f"(({column} IS NULL AND {self.cols.id} {sign} %s){tail})", [record_id]
            tail = "" if order.nulls_come_first else f" OR {column} IS NULL"
            return (
                f"(({column} IS NOT NULL AND ({column}, {self.cols.id}) {sign} (%s, %s)){tail})",
                [value, record_id],
            )
        if order.field in ("created", "updated"):
            value = self.dialect.dt(value)
        return f"(({column}, {self.cols.id}) {sign} (%s, %s))", [value, record_id]


def filter_sql(compiler: Compiler, query: Query, extra: Group | None = None) -> tuple[str, list[Any]]:
    """The WHERE body of ``query`` (and ``extra``, the row policy), with its keyset condition."""
    where, params = compiler.where(query.where)
    parts, all_params = [where], list(params)
    if extra is not None:
        sql, extra_params = compiler.where(extra)
        parts.append(sql)
        all_params += extra_params
    keyset, keyset_params = compiler.keyset(query)
    if keyset:
        parts.append(keyset)
        all_params += keyset_params
    return " AND ".join(parts), all_params
