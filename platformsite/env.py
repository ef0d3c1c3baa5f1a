"""Typed reads of environment variables that fail loudly, for settings and ``app_settings``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def strict_bool(name: str, default: bool) -> bool:
    """Like ``env.bool``, but a value that is neither true nor false is an error, not False."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"expected one of true/false/1/0/yes/no/on/off, got {raw!r}")


def read(name: str, cast: Callable[..., Any], default: Any) -> Any:
    """Read one variable with ``cast`` (e.g. ``env.int``), turning a bad value into an error naming it."""
    try:
        return cast(name, default=default)
    except (ValueError, TypeError, environ.ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name} has an invalid value: {exc}") from exc
