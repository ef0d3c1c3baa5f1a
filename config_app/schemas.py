"""A namespace's JSON Schema: the draft's validator, checking a schema when it is set, and the
errors of a document against it (the config service validates every resolved environment)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
import referencing
import referencing.exceptions
from jsonschema_specifications import REGISTRY as SPECIFICATIONS

from config_app.errors import ConfigError


def _validator_class(schema: dict):
    """The draft's validator; a ``$schema`` naming no draft jsonschema knows is a 400 (jsonschema
    falls back to the latest draft with a warning that says it will be an error)."""
    if "$schema" not in schema:
        return jsonschema.validators.validator_for(schema)
    if not isinstance(schema["$schema"], str):
        raise ConfigError("json_schema's $schema must be a URI.", details={"json_schema": "bad $schema"})
    found = jsonschema.validators.validator_for(schema, default=None)
    if found is None:
        raise ConfigError(
            "json_schema's $schema names no JSON Schema draft the platform knows.",
            details={"json_schema": schema["$schema"][:200]},
        )
    return found


@functools.cache
def _metaschemas() -> jsonschema_rs.Registry:
    """The published drafts' metaschemas, the only resources a ``$ref`` may name outside the schema."""
    return jsonschema_rs.Registry([(uri, SPECIFICATIONS.contents(uri)) for uri in SPECIFICATIONS])


def validator(schema: dict) -> jsonschema_rs.Validator:
    """The schema's validator for values: jsonschema-rs, whose Rust regex engines do not backtrack
    without bound (Python's ``re`` takes exponential time on a ``pattern`` such as ``^(a+)+$``, and a
    write holds the platform's config lock while it validates). Offline: a ``$ref`` may point only
    into the schema and the drafts' metaschemas; formats are annotations, as in jsonschema."""
    try:
        return jsonschema_rs.validator_for(
            schema, registry=_metaschemas(), offline=True, validate_formats=False
        )
    except jsonschema_rs.ValidationError as exc:  # a $ref it cannot resolve, a pattern it cannot compile
        first = str(exc).split("\n", 1)[0]
        if type(exc.kind).__name__ == "Referencing":
            reason = "it has a $ref it cannot resolve"
        elif first.endswith('is not a "regex"'):  # \Z (Rust spells it \z), a repeat past its size limit
            reason = "a pattern is not a regular expression the validator can run (Rust's regex syntax)"
        else:
            reason = "the validator refuses it"
        raise ConfigError(
            f"The namespace's json_schema cannot be applied: {reason}.",
            details={"json_schema": first[:500]},
        ) from None
    except ValueError as exc:  # "Recursion limit reached": a schema stored before nesting was checked
        raise ConfigError(
            "The namespace's json_schema cannot be applied: it nests too deeply.",
            details={"json_schema": str(exc)[:500]},
        ) from None


@dataclass(frozen=True)
class _SchemaError:
    path: str  # "a/b/0", "/" for the root
    keyword: str
    message: str


def schema_errors(validator: jsonschema_rs.Validator, instance: Any) -> list[_SchemaError]:
    """The instance's schema errors, in path order."""
    errors = []
    for error in validator.iter_errors(instance):
        keywords = [part for part in error.schema_path if isinstance(part, str)]
        path = "/".join(str(part) for part in error.instance_path) or "/"
        errors.append(_SchemaError(path, keywords[-1] if keywords else "", error.message))
    return sorted(errors, key=lambda e: e.path)


def check_schema(schema: dict) -> None:
    """A namespace's schema, checked when it is set: a valid draft whose $refs resolve (400)."""
    try:
        _validator_class(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(
            "json_schema is not a valid JSON Schema.", details={"json_schema": exc.message[:500]}
        ) from exc
    try:  # a $ref that cannot resolve, or loops, at the root: a 400 now, not at the first write
        # (the errors of {} are only walked: whether {} is valid is not asked here)
        list(_validator_class(schema)(schema, registry=referencing.Registry()).iter_errors({}))
    except (referencing.exceptions.Unresolvable, RecursionError) as exc:
        reason = "a $ref it cannot resolve" if not isinstance(exc, RecursionError) else "a $ref loop"
        detail = "a $ref refers back to itself" if isinstance(exc, RecursionError) else str(exc)[:500]
        raise ConfigError(
            f"The namespace's json_schema cannot be applied: it has {reason}.",
            details={"json_schema": detail},
        ) from None
    validator(schema)
