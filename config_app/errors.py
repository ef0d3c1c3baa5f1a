"""Errors of the config service, each with its HTTP status and stable code."""

from __future__ import annotations

from typing import Any


class ConfigError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.details = details if details is not None else {}


class InvalidPath(ConfigError):
    code = "invalid_path"


class SchemaViolation(ConfigError):
    code = "schema_violation"


class LayerTooLarge(ConfigError):
    status = 413
    code = "layer_too_large"


class NotFound(ConfigError):
    status = 404
    code = "not_found"


class StaleRevision(ConfigError):
    status = 409
    code = "stale_revision"
