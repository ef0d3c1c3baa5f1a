"""PostgREST's query grammar, parsed strictly: ``?meta.env=eq.prod&order=updated.desc&limit=50``.

Filters: ``<field>=[not.]<op>.<value>`` with ``eq neq gt gte lt lte like ilike in.(a,b) is.null``
(``is.true|false`` on JSON paths), on ``created``, ``updated``, ``id``, ``version``,
``meta.<key>`` and ``data->a->b`` (JSON) / ``data->a->>b`` (text); logic trees
``or=(f.op.v,and(f.op.v,f.not.op.v))``, ``and=(...)``, ``not.or=(...)``; ``order=<field>.asc|desc``,
``select=id,metadata``, ``limit``, ``cursor``.  In ``like`` and ``ilike`` patterns ``*`` is the
wildcard (PostgREST's spelling of ``%``); every other character is literal.

Anything else is refused: :class:`~platformsite.api.errors.Invalid` ``invalid_query`` (400)
naming the parameter and the term it could not read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from django.utils.dateparse import parse_datetime

from dbproxy_app import names
from dbproxy_app.query.ast import OPERATORS, ORDERABLE, SELECTABLE, Cond, Field, Group, Order, Query, all_of
from platformsite.api.errors import Invalid
from platformsite.jsonvalues import unstorable

_PLAIN = ("created", "updated", "id", "version")
#: A field at the start of a logic-tree item (followed by ``.``).
_TREE_FIELD = re.compile(
    r"(created|updated|id|version|meta\.[A-Za-z0-9_:-]{1,64}|data(?:->>?[A-Za-z0-9_-]{1,64})+)\."
)
_LIMIT = re.compile(r"[0-9]{1,9}")
_MAX_TERMS = 100
_MAX_DEPTH = 8
RESERVED = frozenset({"select", "order", "limit", "cursor", "or", "and", "not.or", "not.and"})


def printable(text: str) -> str:
    """``text`` as an answer can carry it: NUL and lone surrogates spelled as escapes."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode()


def bad(parameter: str, term: str, why: str) -> Invalid:
    shown, parameter = printable(term[:100]), printable(parameter)
    return Invalid(
        f"Cannot read {shown!r} in {parameter!r}: {why}.",
        code="invalid_query",
        details={"parameter": parameter[:100], "term": shown},
    )


def parse_field(text: str, parameter: str) -> Field:
    if text in _PLAIN:
        return Field(text)
    if text.startswith("meta."):
        key = text[5:]
        if not names.META_KEY.matches(key):
            raise bad(parameter, text, f"a metadata key is {names.META_KEY.hint}")
        return Field("meta", key=key)
    if text.startswith("data->"):
        parts = text[6:].split("->")
        path, is_text = [], False
        for index, part in enumerate(parts):
            if part.startswith(">"):
                if index != len(parts) - 1:
                    raise bad(parameter, text, "only the last step of a data path may be ->>")
                part, is_text = part[1:], True
            if not names.DATA_KEY.matches(part):
                raise bad(parameter, text, f"a data path step is {names.DATA_KEY.hint}")
            path.append(part)
        if len(path) > names.MAX_PATH_DEPTH:
            raise bad(parameter, text, f"a data path has at most {names.MAX_PATH_DEPTH} steps")
        return Field("data", path=tuple(path), text=is_text)
    raise bad(parameter, text, "fields are created, updated, id, version, meta.<key> and data-><path>")


def _datetime(raw: str, parameter: str) -> Any:
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise bad(parameter, raw, "a date and time in ISO 8601 (2024-05-01T12:00:00Z)")
    try:  # in UTC, as every backend compares: an offset may carry it out of years 1-9999
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise bad(parameter, raw, "a date and time between years 1 and 9999 in UTC") from None


def typed(field: Field, op: str, raw: str, parameter: str) -> Any:
    """``raw`` as the value ``field`` compares with under ``op`` (400 if it cannot be one)."""
    value = _typed(field, op, raw, parameter)
    if unstorable(value, max_depth=64):
        raise bad(parameter, raw, "values may not contain NUL characters or lone surrogates")
    return value


def _typed(field: Field, op: str, raw: str, parameter: str) -> Any:
    if op in ("like", "ilike"):
        if field.kind in ("meta", "id") or (field.kind == "data" and field.text):
            return raw
        raise bad(parameter, f"{field.label}.{op}", "like and ilike apply to text (id, meta.*, data->>path)")
    if field.kind in ("created", "updated"):
        return _datetime(raw, parameter)
    if field.kind == "version":
        if not re.fullmatch(r"-?[0-9]{1,18}", raw):
            raise bad(parameter, raw, "version compares with an integer")
        return int(raw)
    if field.json:
        try:
            value = json.loads(raw)
        except ValueError:
            raise bad(parameter, raw, "a data-> path compares with a JSON value (quote strings)") from None
        problem = number_problem(value)
        if problem:
            raise bad(parameter, raw, problem)
        if op in ("gt", "gte", "lt", "lte") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise bad(parameter, raw, "gt, gte, lt and lte on a data-> path compare with a number")
        return value
    return raw


def number_problem(value: Any) -> str | None:
    """Why a number cannot be compared on every backend: an integer beyond 64 bits (SQLite cannot
    bind it) or a float that is not finite (JSON has no such number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return "integers in a query fit in 64 bits"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers in a query are finite"
    return None


def _is_value(field: Field, raw: str, parameter: str) -> Any:
    if raw == "null":
        return None
    if raw in ("true", "false") and field.json:
        return raw == "true"
    allowed = "null, true or false" if field.json else "null"
    raise bad(parameter, f"is.{raw}", f"is takes {allowed} here")


def _list_items(text: str, parameter: str) -> list[str]:
    """``a,"b,c",d`` -> items (double quotes protect commas and parentheses; ``\\`` escapes)."""
    items, position = [], 0
    while True:
        item, position = _value(text, position, parameter, stop=",")
        items.append(item)
        if position >= len(text):
            return items
        position += 1  # the comma


def _value(text: str, position: int, parameter: str, *, stop: str) -> tuple[str, int]:
    """A value starting at ``position``, up to an unquoted character of ``stop``: (value, end)."""
    if position < len(text) and text[position] == '"':
        out, position = [], position + 1
        while position < len(text):
            char = text[position]
            if char == "\\" and position + 1 < len(text):
                out.append(text[position + 1])
                position += 2
            elif char == '"':
                end = position + 1
                if end < len(text) and text[end] not in stop:
                    raise bad(parameter, text[end : end + 20], "a quoted value ends at its closing quote")
                return "".join(out), end
            else:
                out.append(char)
                position += 1
        raise bad(parameter, text, "a quoted value has no closing quote")
    end = position
    while end < len(text) and text[end] not in stop:
        if text[end] in '()"':
            raise bad(parameter, text[position:][:40], 'quote values holding ( ) or "')
        end += 1
    return text[position:end], end


def condition(field: Field, spec: str, parameter: str) -> Cond:
    """``[not.]op.value`` on ``field``."""
    negate = spec.startswith("not.")
    if negate:
        spec = spec[4:]
    op, dot, raw = spec.partition(".")
    if op not in OPERATORS or not dot:
        raise bad(parameter, spec[:40], f"an operator is one of {', '.join(OPERATORS)}, then '.'")
    if op == "is":
        return Cond(field, op, _is_value(field, raw, parameter), negate)
    if op == "in":
        if not (raw.startswith("(") and raw.endswith(")")):
            raise bad(parameter, raw, "in takes a list: in.(a,b)")
        items = _list_items(raw[1:-1], parameter) if raw != "()" else []
        return Cond(field, op, [typed(field, "eq", item, parameter) for item in items], negate)
    return Cond(field, op, typed(field, op, raw, parameter), negate)


class _Tree:
    """A logic tree: ``(item,item)`` where an item is ``[not.]and(...)``, ``[not.]or(...)`` or
    ``field.[not.]op.value``."""

    def __init__(self, text: str, parameter: str) -> None:
        self.text, self.parameter, self.position, self.terms = text, parameter, 0, 0

    def fail(self, why: str) -> Invalid:
        return bad(self.parameter, self.text[self.position :][:40] or "(end)", why)

    def group(self, kind: str, negate: bool, depth: int) -> Group:
        if depth > _MAX_DEPTH:
            raise self.fail(f"logic trees nest at most {_MAX_DEPTH} levels")
        if not self.text.startswith("(", self.position):
            raise self.fail("a logic tree starts with '('")
        self.position += 1
        items = []
        while True:
            items.append(self.item(depth))
            if self.text.startswith(",", self.position):
                self.position += 1
            elif self.text.startswith(")", self.position):
                self.position += 1
                return Group(kind, tuple(items), negate)
            else:
                raise self.fail("expected ',' or ')'")

    def item(self, depth: int) -> Any:
        self.terms += 1
        if self.terms > _MAX_TERMS:
            raise self.fail(f"a query has at most {_MAX_TERMS} conditions")
        rest = self.text[self.position :]
        negate = rest.startswith("not.")
        head = rest[4:] if negate else rest
        for kind in ("and", "or"):
            if head.startswith(kind + "("):
                self.position += len(kind) + (4 if negate else 0)
                return self.group(kind, negate, depth + 1)
        match = _TREE_FIELD.match(rest)
        if not match:
            raise self.fail("expected a field (created, updated, id, version, meta.<key>, data->...)")
        field = parse_field(match.group(1), self.parameter)
        self.position += match.end()
        negated = self.text.startswith("not.", self.position)
        op_start = self.position + (4 if negated else 0)
        op, dot, _ = self.text[op_start:].partition(".")
        if op not in OPERATORS or not dot:
            raise self.fail(f"an operator is one of {', '.join(OPERATORS)}, then '.'")
        value_start = op_start + len(op) + 1
        if op == "in":
            rest_of_list = self.text[value_start:]
            end = _list_end(rest_of_list, self.parameter)
            raw, self.position = rest_of_list[:end], value_start + end
        else:
            raw, self.position = _value(self.text, value_start, self.parameter, stop=",)")
        spec = ("not." if negated else "") + op + "." + raw
        return condition(field, spec, self.parameter)


def _list_end(text: str, parameter: str) -> int:
    """Where the ``(...)`` list at the start of ``text`` ends (just past its ``)``)."""
    if not text.startswith("("):
        raise bad(parameter, text[:40], "in takes a list: in.(a,b)")
    quoted, position = False, 1
    while position < len(text):
        char = text[position]
        if char == "\\" and quoted:
            position += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == ")" and not quoted:
            return position + 1
        position += 1
    raise bad(parameter, text[:40], "a list has no closing ')'")


def parse_tree(kind: str, negate: bool, text: str, parameter: str) -> Group:
    tree = _Tree(text, parameter)
    group = tree.group(kind, negate, 1)
    if tree.position != len(text):
        raise tree.fail("unexpected text after the logic tree")
    return group


def parse_order(raw: str) -> Order:
    """``field[.asc|.desc][.nullsfirst|.nullslast]``; a field is one of :data:`ORDERABLE`,
    ``meta.<key>`` or ``data-><path>`` (neither a key nor a path step holds a dot)."""
    if raw.startswith("meta."):
        head, _, rest = raw[5:].partition(".")
        key: Field | None = parse_field("meta." + head, "order")
    elif raw.startswith("data->"):
        head, _, rest = raw.partition(".")
        key = parse_field(head, "order")
    else:
        head, _, rest = raw.partition(".")
        if head not in ORDERABLE:
            raise bad("order", raw, f"order by one of {', '.join(ORDERABLE)}, meta.<key> or data-><path>")
        key = None
    modifiers = rest.split(".") if rest else []
    direction = modifiers.pop(0) if modifiers and modifiers[0] in ("asc", "desc") else "asc"
    nulls = modifiers.pop(0) if modifiers and modifiers[0] in ("nullsfirst", "nullslast") else None
    if modifiers:
        raise bad("order", raw, "a direction is asc or desc, then nullsfirst or nullslast")
    field = key.label if key is not None else head
    return Order(field, direction == "desc", key, None if nulls is None else nulls == "nullsfirst")


def parse_select(raw: str) -> tuple[str, ...]:
    if raw == "*":
        return SELECTABLE
    chosen = raw.split(",")
    for item in chosen:
        if item not in SELECTABLE:
            raise bad("select", item, f"select among {', '.join(SELECTABLE)} (or *)")
    return tuple(name for name in SELECTABLE if name in chosen)


def encode_cursor(order: Order, value: Any, record_id: str) -> str:
    shown = value.isoformat() if hasattr(value, "isoformat") else value
    fields = [order.field, order.descending, shown, record_id]
    if order.key is not None:
        fields.append(order.nulls_come_first)
    raw = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(raw: str, order: Order) -> tuple[Any, str]:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        fields = json.loads(base64.urlsafe_b64decode(padded.encode()))
        field, descending, value, record_id, *nulls = fields
    except (ValueError, TypeError, binascii.Error):
        raise bad("cursor", raw[:40], "not a cursor this API gave") from None
    expected_nulls = [order.nulls_come_first] if order.key is not None else []
    if (
        field != order.field
        or descending != order.descending
        or nulls != expected_nulls
        or not names.RECORD_ID.matches(record_id)
    ):
        raise bad("cursor", raw[:40], "the cursor belongs to another order")
    if order.key is not None:  # the value's text, or null where the record has none
        if value is None or (isinstance(value, str) and not unstorable(value, max_depth=1)):
            return value, record_id
        raise bad("cursor", raw[:40], "not a cursor this API gave")
    if field in ("created", "updated"):
        value = _datetime(value, "cursor") if isinstance(value, str) else None
    elif field == "version":
        # a BIGINT, as a version is: a larger number would overflow the database's parameter
        value = (
            value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63 else None
        )
    elif not names.RECORD_ID.matches(value):
        value = None
    if value is None:
        raise bad("cursor", raw[:40], "not a cursor this API gave")
    return value, record_id


#: The parameters a query gives at most once, and what to do instead.
_ONCE = {
    "order": "given once: a query has one order (ties break by id)",
    "select": "given once: select=id,metadata lists the fields in one",
    "limit": "given once",
    "cursor": "given once: pass the page's next cursor",
}


def given_once(parameter: str, values: list[str]) -> None:
    """400 when a parameter a query gives at most once is given again (the last one would win,
    the others be left unread)."""
    if parameter in _ONCE and len(values) > 1:
        raise bad(parameter, values[1], _ONCE[parameter])


def parse_query(params: Iterable[tuple[str, list[str]]], *, default_limit: int, max_limit: int) -> Query:
    """A query from the query string's ``(name, values)`` pairs; 400 on the first bad term."""
    query = Query(limit=default_limit)
    filters: list[Any] = []
    cursor: str | None = None
    for parameter, values in params:
        given_once(parameter, values)
        for raw in values:
            if parameter == "order":
                query.order = parse_order(raw)
            elif parameter == "select":
                query.select = parse_select(raw)
            elif parameter == "limit":
                if not _LIMIT.fullmatch(raw) or int(raw) < 1:
                    raise bad("limit", raw, "a positive integer")
                query.limit = min(int(raw), max_limit)
            elif parameter == "cursor":
                cursor = raw
            elif parameter in ("or", "and", "not.or", "not.and"):
                negate = parameter.startswith("not.")
                filters.append(parse_tree(parameter.removeprefix("not."), negate, raw, parameter))
            elif parameter == "offset":
                raise bad("offset", raw, "pages follow keyset cursors: pass the page's next cursor")
            else:
                filters.append(condition(parse_field(parameter, parameter), raw, parameter))
            if len(filters) > _MAX_TERMS:
                raise bad(parameter, raw, f"a query has at most {_MAX_TERMS} conditions")
    query.where = all_of(*filters)
    if cursor is not None:
        query.after = decode_cursor(cursor, query.order)
    return query
