"""What a database cannot store in a JSON value: PostgreSQL refuses NUL (U+0000) in text and
jsonb, no database encodes a lone surrogate (which JSON's ``"\\ud800"`` escapes produce) as UTF-8,
a value nested deeper than Python's recursion limit breaks the encoders that store and serve
it, and no JSON column stores an infinite number or NaN (``1e999`` parses as infinity).  Checked
without recursion, so a value nested as deep as the JSON parser allows is safe here."""

from __future__ import annotations

import re
from math import isfinite
from typing import Any

#: Characters no stored text may hold.
UNSTORABLE_CHARS = re.compile("[\x00\ud800-\udfff]")


def unstorable(value: Any, *, max_depth: int) -> str | None:
    """Why ``value`` cannot be stored (a bad character in a key or string, nesting deeper than
    ``max_depth`` levels of objects and lists, a number that is not finite), or None when it can."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE_CHARS.search(item):
                return "Strings may not contain NUL characters or lone surrogates."
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return f"Nested deeper than {max_depth} levels."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not isfinite(item):
            return "Numbers must be finite (no NaN or Infinity)."
    return None


def storable(value: str) -> str:
    """``value`` without NUL, its lone surrogates replaced by U+FFFD: for text the platform keeps
    whatever a client sent (span tags, the client id of a failed sign-in in an audit event), where
    refusing it is not an option."""
    if UNSTORABLE_CHARS.search(value) is None:
        return value
    return UNSTORABLE_CHARS.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", value)


def scrubbed(value: Any) -> Any:
    """``value`` with every string in it, keys included, :func:`storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {scrubbed(key): scrubbed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrubbed(item) for item in value]
    return value
