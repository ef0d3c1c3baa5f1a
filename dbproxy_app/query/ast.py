"""What a parsed query is: conditions on record fields, combined with and/or/not.

The PostgREST grammar (:mod:`.grammar`) and the row policies' expressions (:mod:`.conditions`)
both parse into these; the SQL compiler (:mod:`.sql`) and the evaluator (:mod:`.evaluate`) read
them.  Values are typed at parse time (a datetime for ``created``, an int for ``version``...),
so a compiler never sees a value its field cannot hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Fields a query orders by (a keyset cursor follows them, ``id`` breaking ties).
ORDERABLE = ("created", "updated", "id", "version")
#: The fields of a record, in the order an answer lists them (``select=`` picks among them).
SELECTABLE = ("id", "created", "updated", "version", "metadata", "data", "bytes")
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is")


@dataclass(frozen=True)
class Field:
    """``created``, ``updated``, ``id``, ``version``, ``meta.<key>`` or ``data-><path>``.

    A data path ending in ``->>`` compares the value as text (PostgREST's rule); ending in ``->``
    it compares the JSON value (numbers as numbers).
    """

    kind: str
    key: str = ""
    path: tuple[str, ...] = ()
    text: bool = True

    @property
    def label(self) -> str:
        if self.kind == "meta":
            return f"meta.{self.key}"
        if self.kind == "data":
            arrows = ["->" + part for part in self.path]
            if self.text:
                arrows[-1] = "->>" + self.path[-1]
            return "data" + "".join(arrows)
        return self.kind

    @property
    def json(self) -> bool:
        """True for a ``data->`` path compared as JSON."""
        return self.kind == "data" and not self.text


@dataclass(frozen=True)
class Cond:
    """``field op value``; ``value`` is a list for ``in``, None/True/False for ``is``."""

    field: Field
    op: str
    value: Any
    negate: bool = False


@dataclass(frozen=True)
class Group:
    """``and`` or ``or`` of conditions and groups (an empty ``and`` is true, an empty ``or`` false)."""

    kind: str
    items: tuple[Any, ...] = ()
    negate: bool = False


@dataclass(frozen=True)
class Order:
    """``order=<field>[.asc|.desc][.nullsfirst|.nullslast]``: ``field`` is ``created``, ``updated``,
    ``id``, ``version``, or the label of ``key`` (``meta.<key>``, ``data->a->b``), which orders by
    the value's text (missing: NULL, first when descending unless ``nulls_first`` says)."""

    field: str = "updated"
    descending: bool = True
    key: Field | None = None
    nulls_first: bool | None = None

    @property
    def nulls_come_first(self) -> bool:
        return self.descending if self.nulls_first is None else self.nulls_first


@dataclass
class Query:
    """A whole query: its filter, order, selected fields, page size and keyset cursor."""

    where: Group = field(default_factory=lambda: Group("and"))
    order: Order = field(default_factory=Order)
    select: tuple[str, ...] = SELECTABLE
    limit: int = 100
    after: tuple[Any, str] | None = None  # (the order field's value, the id) of the last row seen


def all_of(*items: Any) -> Group:
    """The conjunction of ``items``, flattening plain (un-negated) ands."""
    flat: list[Any] = []
    for item in items:
        if isinstance(item, Group) and item.kind == "and" and not item.negate:
            flat.extend(item.items)
        else:
            flat.append(item)
    return Group("and", tuple(flat))


def text_of(value: Any) -> str | None:
    """How a data value reads through ``->>``: strings as they are, other JSON as its text."""
    import json

    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
