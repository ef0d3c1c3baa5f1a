"""Query parameters shared by the native and the Zipkin read APIs and the dashboard: ids, integers,
durations, tag terms."""

from __future__ import annotations

import math
import re
import time
from typing import Any

from platformsite.api.errors import Invalid

_TRACE_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
#: Zipkin's integer parameters are 64-bit (Java longs).
_BIGINT = 2**63 - 1


def trace_id(value: Any, what: str = "trace id") -> str:
    """A trace id as given (16 or 32 hex), checked; 400 otherwise."""
    if not value:
        raise Invalid(f"The {what} is required.", "invalid_trace_id")
    if not isinstance(value, str) or not _TRACE_ID.fullmatch(value):
        raise Invalid(f"The {what} {str(value)[:40]!r} is not 16 or 32 hex characters.", "invalid_trace_id")
    if not value.strip("0"):
        raise Invalid(
            f"The {what} is all zeros, which W3C and Zipkin reserve as invalid.", "invalid_trace_id"
        )
    return value.lower()


def text(params: Any, name: str, default: str = "") -> str:
    """A text parameter; 400 when it holds a NUL character (no database can compare one)."""
    value = params.get(name, default)
    if "\x00" in value:
        raise Invalid(f"{name} must not contain NUL characters.", "invalid_parameter", {"parameter": name})
    return value


def integer(params: Any, name: str, default: int | None = None, *, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or int(raw) < minimum or int(raw) > _BIGINT:
        raise Invalid(
            f"{name} must be a 64-bit integer of at least {minimum}.",
            "invalid_parameter",
            {"parameter": name},
        )
    return int(raw)


#: The longest duration a search takes, in ms (some 31,700 years; a span lasts at most ten): its
#: µs are a 64-bit integer, as stored, and the bound is exact as a float.
MAX_DURATION_MS = 10**15


def milliseconds(value: float | str, name: str) -> int:
    """A duration in milliseconds (a number or its text) as whole microseconds; 400
    ``invalid_parameter`` naming ``name`` unless it is a number from 0 to ``MAX_DURATION_MS``
    ("1e306" or "inf" would overflow the conversion, a 500)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= MAX_DURATION_MS:  # NaN fails both comparisons
        raise Invalid(
            f"{name}: {str(value)[:40]!r} is not a number of milliseconds from 0 to {MAX_DURATION_MS}.",
            "invalid_parameter",
            {"parameter": name},
        )
    return int(number * 1000)


#: The most terms a search takes in one parameter (Zipkin's ``annotationQuery``, the native
#: search's ``tag`` and ``word``, the dashboard's tags and words): each one is a condition of the
#: database's query, and a thousand of them took seconds before SQLite refused the query.
MAX_TERMS = 20


def check_terms(count: int, name: str) -> None:
    """400 ``invalid_parameter`` naming ``name`` when it holds more than ``MAX_TERMS`` terms."""
    if count > MAX_TERMS:
        raise Invalid(
            f"{name} has {count} terms; a search takes at most {MAX_TERMS}.",
            "invalid_parameter",
            {"parameter": name},
        )


def terms(query: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Zipkin's ``annotationQuery``: ``k=v`` terms (tags) and words, joined by ``and`` (at most
    ``MAX_TERMS`` of them)."""
    if "\x00" in query:
        raise Invalid("annotationQuery must not contain NUL characters.", "invalid_parameter")
    split = re.split(r"\s+and\s+", query.strip()) if query.strip() else []
    check_terms(len(split), "annotationQuery")
    tags, words = [], []
    for term in split:
        key, eq, value = term.strip().partition("=")
        if not key.strip():
            raise Invalid(
                f"The term {term!r} has no key.", "invalid_parameter", {"parameter": "annotationQuery"}
            )
        if eq:
            tags.append((key.strip(), value.strip()))
        else:
            words.append(key.strip())
    return tuple(tags), tuple(words)


def now_us() -> int:
    return int(time.time() * 1_000_000)
