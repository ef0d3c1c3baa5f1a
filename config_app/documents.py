"""Pure functions on JSON documents: canonical form, paths, deep merge, diff.

A path is a slash-separated list of keys (``db/host``); a dot is part of a key (``db.host`` is
one key), never a separator.  Reading through a list takes a decimal index.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from config_app.errors import InvalidPath
from platformsite.jsonvalues import UNSTORABLE_CHARS

SEGMENT = re.compile(r"[A-Za-z0-9_\-.:@$]{1,128}")
MAX_DEPTH = 32
#: Deepest nesting of objects and lists a stored document may have.
MAX_NESTING = 100
_MISSING = object()


def canonical(data: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(data: Any) -> str:
    return hashlib.sha256(canonical(data)).hexdigest()


def parse_path(path: str | None) -> tuple[str, ...]:
    """``"db/host"`` -> ``("db", "host")``; ``None`` -> ``()``; bad paths raise InvalidPath.

    A path is taken as written: an empty path, an empty segment (``db//host``, a leading or a
    trailing ``/``), ``.`` or ``..`` is refused, never read as another path (``db//`` is not ``db``).
    """
    if path is None:
        return ()
    segments = tuple(path.split("/"))
    if len(segments) > MAX_DEPTH or not all(SEGMENT.fullmatch(s) and s not in {".", ".."} for s in segments):
        raise InvalidPath(
            f"The path {path[:200]!r} does not parse: use keys of letters, digits and _-.:@$ joined by '/'"
            " (no empty key, no leading or trailing '/').",
            details={"path": path[:200]},
        )
    return segments


def nesting(data: Any) -> int:
    """How deeply objects and lists nest in ``data`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def find_unstorable(data: Any) -> str | None:
    """The path of the first key or string holding a character no database stores (NUL, which
    PostgreSQL's jsonb refuses, or a lone surrogate, which no UTF-8 encoder writes), if any."""
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str) and UNSTORABLE_CHARS.search(node):
            return printable(path or "/")
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}/{key}" if path else key
                if UNSTORABLE_CHARS.search(key):
                    return printable(child)
                stack.append((value, child))
        elif isinstance(node, list):
            stack.extend((value, f"{path}/{index}") for index, value in enumerate(node))
    return None


def printable(path: str) -> str:
    """``path`` with its unstorable characters escaped, so an error message can carry it."""
    return UNSTORABLE_CHARS.sub(lambda match: f"\\u{ord(match.group()):04x}", path)


def get_at(data: Any, segments: tuple[str, ...], default: Any = _MISSING) -> Any:
    node = data
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return default
    return node


def missing(value: Any) -> bool:
    return value is _MISSING


def json_kind(value: Any) -> str:
    """What a JSON value is, as a message names it: "a string", "an array", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else "an array" if isinstance(value, list) else "an object"


def set_at(data: dict, segments: tuple[str, ...], value: Any) -> dict:
    """A copy of ``data`` with ``value`` at ``segments`` (objects created on the way)."""
    if not segments:
        if not isinstance(value, dict):
            raise InvalidPath("A layer's root must be a JSON object.", code="invalid")
        return copy.deepcopy(value)
    result = copy.deepcopy(data)
    node = result
    for depth, segment in enumerate(segments[:-1]):
        child = node.get(segment)
        if not isinstance(child, dict):
            if child is not None:
                raise InvalidPath(
                    f"{'/'.join(segments[: depth + 1])} holds {json_kind(child)}, not an object.",
                    code="path_conflict",
                    details={"path": "/".join(segments)},
                )
            child = node[segment] = {}
        node = child
    node[segments[-1]] = copy.deepcopy(value)
    return result


def delete_at(data: dict, segments: tuple[str, ...]) -> tuple[dict, bool]:
    """A copy of ``data`` without ``segments``, and whether there was anything to delete."""
    if not segments:
        return {}, bool(data)
    result = copy.deepcopy(data)
    node: Any = result
    for segment in segments[:-1]:
        node = node.get(segment) if isinstance(node, dict) else None
    if isinstance(node, dict) and segments[-1] in node:
        del node[segments[-1]]
        return result, True
    return result, False


def deep_merge(base: Any, overlay: Any, *, merge_opaque: Callable[[Any, Any], Any] | None = None) -> Any:
    """``overlay`` over ``base``: objects merge key by key, a ``null`` deletes, anything else replaces.

    ``merge_opaque(current, value)``, where a key is in both, merges values the walk must not
    enter (sealed secrets), or answers None to let the plain rules apply.
    """
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return copy.deepcopy(overlay)
    result = dict(base)
    for key, value in overlay.items():
        if value is None:
            result.pop(key, None)
        elif (
            merge_opaque is not None
            and key in result
            and (merged := merge_opaque(result[key], value)) is not None
        ):
            result[key] = merged
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value, merge_opaque=merge_opaque)
        else:
            result[key] = strip_nulls(copy.deepcopy(value))
    return result


def strip_nulls(value: Any) -> Any:
    """An object without its null members (at every depth), as a layer's value is merged."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    return value


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a document: objects are walked, everything else (lists included) is a leaf."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}/{key}" if prefix else str(key)))
        return out
    return {prefix: data} if prefix else ({} if data == {} else {"": data})


def diff(old: Any, new: Any) -> dict[str, list]:
    """Paths added, removed and changed from ``old`` to ``new`` (leaves only)."""
    before, after = flatten(old), flatten(new)
    return {
        "added": [{"path": p, "value": after[p]} for p in sorted(after.keys() - before.keys())],
        "removed": [{"path": p, "value": before[p]} for p in sorted(before.keys() - after.keys())],
        "changed": [
            {"path": p, "from": before[p], "to": after[p]}
            for p in sorted(before.keys() & after.keys())
            if before[p] != after[p]
        ],
    }


def find_reserved_keys(data: Any, reserved: str, prefix: str = "") -> list[str]:
    """Paths of objects using a key the service reserves for itself."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}/{key}" if prefix else key
            if key == reserved:
                found.append(path)
            found += find_reserved_keys(value, reserved, path)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += find_reserved_keys(value, reserved, f"{prefix}/{index}")
    return found
