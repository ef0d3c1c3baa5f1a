"""Errors of the config service: the platform's error kinds, with the config service's codes."""

from __future__ import annotations

from platformsite.api.errors import Conflict, Denied, Invalid, NotFound, PlatformError, TooLarge

__all__ = [
    "ConfigError",
    "Conflict",
    "Denied",
    "InvalidPath",
    "LayerTooLarge",
    "NotFound",
    "SchemaViolation",
    "StaleRevision",
]

#: Any error the config service raises (each answers with its own status and code).
ConfigError = PlatformError


class InvalidPath(Invalid):
    code = "invalid_path"


class SchemaViolation(Invalid):
    code = "schema_violation"


class LayerTooLarge(TooLarge):
    code = "layer_too_large"


class StaleRevision(Conflict):
    code = "stale_revision"
