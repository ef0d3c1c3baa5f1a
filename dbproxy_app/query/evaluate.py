"""A query evaluated on one record in Python, with SQL's three-valued logic.

Row policies check a record being written with it (the record is not in the table yet), and the
tests hold every backend's answers against it.  ``None`` is SQL's unknown: a comparison with a
missing value is unknown, ``not`` keeps it unknown, and a record matches only when the whole
condition is true.
"""

from __future__ import annotations

import re
from typing import Any

from dbproxy_app.query.ast import Cond, Group, text_of

MISSING = object()


def _walk(data: Any, path: tuple[str, ...]) -> Any:
    for step in path:
        if not isinstance(data, dict) or step not in data:
            return MISSING
        data = data[step]
    return data


def field_value(record: dict[str, Any], cond: Cond) -> Any:
    """The value ``cond``'s field has in ``record``: MISSING when absent (JSON null is None)."""
    field = cond.field
    if field.kind == "meta":
        return record.get("metadata", {}).get(field.key, MISSING)
    if field.kind == "data":
        value = _walk(record.get("data"), field.path)
        if field.text:
            return MISSING if value is MISSING or value is None else text_of(value)
        return value
    return record.get(field.kind, MISSING)


def like_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """A PostgREST like pattern (``*`` any characters, the rest literal) as a whole-string regex."""
    body = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _number(left) and _number(right):
        return left == right
    return type(left) is type(right) and left == right


def _compare(cond: Cond, value: Any) -> bool | None:
    op, wanted = cond.op, cond.value
    if op == "is":
        if wanted is None:
            return value is MISSING or value is None
        return value is wanted
    if op == "in" and not wanted:
        return False
    if value is MISSING:
        return None
    json = cond.field.json
    if json and op in ("gt", "gte", "lt", "lte") and not _number(value):
        return None
    if op in ("eq", "neq", "in"):
        equal = _json_equal if json else (lambda a, b: a == b)
        if op == "in":
            return any(equal(value, item) for item in wanted)
        return equal(value, wanted) == (op == "eq")
    if op in ("like", "ilike"):
        return like_regex(wanted, ignore_case=op == "ilike").fullmatch(value) is not None
    if op == "gt":
        return value > wanted
    if op == "gte":
        return value >= wanted
    if op == "lt":
        return value < wanted
    return value <= wanted


def _negated(result: bool | None, negate: bool) -> bool | None:
    return (not result if result is not None else None) if negate else result


def evaluate(node: Any, record: dict[str, Any]) -> bool | None:
    """True, False or None (unknown) for ``node`` on ``record``."""
    if isinstance(node, Cond):
        return _negated(_compare(node, field_value(record, node)), node.negate)
    results = [evaluate(item, record) for item in node.items]
    if node.kind == "and":
        result = False if False in results else None if None in results else True
    else:
        result = True if True in results else None if None in results else False
    return _negated(result, node.negate)


def matches(node: Group, record: dict[str, Any]) -> bool:
    return evaluate(node, record) is True
