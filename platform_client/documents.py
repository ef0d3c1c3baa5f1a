"""Document helpers of the SDK's config: merging layers, durations, paths, and the error type."""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable
from typing import Any

#: What a path that leads nowhere returns from :func:`walk`.
MISSING = object()
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s|d)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class ConfigError(Exception):
    """A source could not be loaded and has no last good document, or a value has the wrong type."""


def deep_merge(base: Any, overlay: Any) -> Any:
    """``overlay`` over ``base``: objects merge key by key, ``None`` deletes, anything else replaces."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return copy.deepcopy(overlay)
    result = dict(base)
    for key, value in overlay.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``"250ms"``, ``"30s"``, ``"1h30m"``, ``"2d"``."""
    if isinstance(value, bool):
        raise ConfigError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        with contextlib.suppress(ValueError):
            return float(text)
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _UNITS[u] for n, u in parts)
    raise ConfigError(f"not a duration: {value!r}")


def split_path(path: str) -> tuple[str, ...]:
    """``"db.host"`` or ``"db/host"`` -> ``("db", "host")`` (a path holding '/' splits on '/' only).

    A path is taken as written, as the platform takes it: an empty path, an empty segment
    (``db//host``, ``db..host``, a leading or trailing separator: ``db/``, ``/db``, ``db.``, ``.db``)
    or a segment ``.`` or ``..`` raises ValueError naming the path, never reads another path.
    """
    separator = "/" if "/" in path else "."
    segments = tuple(path.split(separator))
    if not all(segment and segment not in {".", ".."} for segment in segments):
        raise ValueError(
            f"The config path {path[:200]!r} does not parse: use keys joined by '.' or by '/'"
            " (no empty key, no leading or trailing separator, no '.' or '..' key)."
        )
    return segments


def walk(data: Any, segments: tuple[str, ...]) -> Any:
    node = data
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return MISSING
    return node


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (handy in tests and scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
