"""Input checks every service shares: names, wait durations, query flags and JSON body fields.

Each raises the platform's :class:`~platformsite.api.errors.Invalid` (400) with a stable code
(``parse_flag`` a field error, as the list filters do), so a bad value is refused the same way on
every service.  JSON a database cannot store is checked
by :mod:`platformsite.jsonvalues`; query-string filters are FilterSets (:mod:`.filters`).
A JSON body's booleans and numbers are read by :class:`StrictBooleanField`,
:class:`StrictIntegerField` and :class:`StrictFloatField`: DRF's own fields are made for form
data as well and take ``"yes"``, ``"1"`` or ``1`` for true and ``true`` or ``"2.5"`` for a number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from platformsite.api.errors import Invalid

#: ``wait=`` durations: ``30s``, ``500ms``, ``1m``, or bare seconds.
WAIT = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)(ms|s|m)?")


@dataclass(frozen=True)
class Name:
    """A name's grammar, written once: ``pattern`` for URL and hot-path regexes, :meth:`matches`
    for a whole-string match (``fullmatch``: a trailing newline is never part of a valid name)."""

    pattern: str
    hint: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.pattern))

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.compiled.fullmatch(value) is not None

    def check(self, value: Any, what: str) -> str:
        """``value`` if it is a valid name, else 400 ``invalid_<what>`` (missing: "is required")."""
        if value is None:
            raise Invalid(f"{what} is required: {self.hint}.", code=f"invalid_{what}", details={what: None})
        if not self.matches(value):
            shown = str(value)[:80]
            raise Invalid(
                f"{what} {shown!r} is not valid: {self.hint}.", code=f"invalid_{what}", details={what: shown}
            )
        return value


#: Service names and node ids as discovery registers them (and router, monitor, trace refer to).
SERVICE = Name(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", "1-200 letters, digits, '.', '_' or '-'")
NODE = Name(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}", "a node id: 1-200 letters, digits, '.', '_', ':' or '-'")

#: Config namespaces and environments, event subscriptions: lower-case slugs.
SLUG = Name(r"[a-z0-9][a-z0-9_-]{0,62}", "lower-case letters, digits, - and _ (up to 63)")


def parse_wait(raw: str | None, *, default: float, maximum: float) -> float:
    """A blocking query's ``wait`` in seconds, at most ``maximum``; 400 ``invalid_wait`` if unreadable."""
    if raw is None or raw == "":
        return min(default, maximum)
    match = WAIT.fullmatch(raw.strip())
    if not match:
        raise Invalid(
            "wait must look like 30s, 500ms, 1m or 30.", code="invalid_wait", details={"wait": raw[:40]}
        )
    number, unit = float(match.group(1)), match.group(2) or "s"
    seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    return min(seconds, maximum)


_TRUE, _FALSE = frozenset({"", "1", "true", "yes"}), frozenset({"0", "false", "no"})
#: What a refused flag is told (every spelling :func:`flag` reads).
FLAG_SPELLINGS = "true or false (or 1/0, yes/no)."


def flag(value: str) -> bool:
    """A flag's value as :func:`parse_flag` reads it (``""`` is true); ValueError if it is
    none of the spellings.  For the places that answer a bad value with no DRF response: a
    dashboard's 400 page, a websocket's error frame."""
    value = value.lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(FLAG_SPELLINGS)
    return value in _TRUE


def parse_flag(params: Any, name: str) -> bool:
    """A query flag as Consul reads one: absent is false, ``?name`` alone is true, and
    true/false, 1/0 or yes/no (any case) say which; anything else is a 400 naming it, as a field
    error (``details: {name: [FLAG_SPELLINGS]}``, the shape of the list filters' refusals)."""
    if name not in params:
        return False
    try:
        return flag(params[name])
    except ValueError as exc:
        raise ValidationError({name: [str(exc)]}) from None


class StrictBooleanField(serializers.BooleanField):
    """A JSON body's boolean: ``true`` or ``false`` only (``"yes"``, ``"true"``, ``1`` are refused:
    a client sending them has a bug to see, not a guess made for it)."""

    default_error_messages = {"invalid": "Must be true or false (a JSON boolean, not a string or number)."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _json_number(data: Any) -> bool:
    """A JSON number: an int (of any size) or a finite float, never a boolean (Python's bool is
    an int; ``math.isfinite`` of an int too large for a float raises, so ints are not asked)."""
    if isinstance(data, bool) or not isinstance(data, int | float):
        return False
    return isinstance(data, int) or math.isfinite(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON body's whole number (``5``, or ``5.0``); a string (``"5"``) or boolean is refused."""

    default_error_messages = {"invalid": "A whole number (a JSON number, not a string or boolean)."}

    def to_internal_value(self, data: Any) -> int:
        if not _json_number(data) or (isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(int(data))


class StrictFloatField(serializers.FloatField):
    """A JSON body's number (finite); a string (``"2.5"``) or boolean is refused (an integer too
    large for a float is refused by DRF's own check, as ``overflow``)."""

    default_error_messages = {"invalid": "A number (a JSON number, not a string or boolean)."}

    def to_internal_value(self, data: Any) -> float:
        if not _json_number(data):
            self.fail("invalid")
        return super().to_internal_value(data)
