"""Writes of the config service: namespaces and layer revisions.

Every write to a layer adds a revision (nothing is overwritten) under a lock on the ``global``
namespace row and the written namespace's row (in that order), so writes are serialized, the
revision number is the head's plus one, and ``expected_revision`` is checked against the head
under the lock.  The unique (namespace, env, number) constraint backs this up: a write that
still loses a race gets 409.  Validation (size, JSON Schema of every affected resolved
environment) happens before anything is written.  After commit the namespace's cache generation
is bumped, the websocket watchers are told and a ``config.namespace.changed`` event is published.
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction

from config_app import schemas, sealing
from config_app.documents import (
    MAX_NESTING,
    canonical,
    checksum,
    deep_merge,
    delete_at,
    find_reserved_keys,
    find_unstorable,
    get_at,
    missing,
    nesting,
    parse_path,
    set_at,
)
from config_app.errors import (
    ConfigError,
    Conflict,
    Denied,
    InvalidPath,
    LayerTooLarge,
    NotFound,
    SchemaViolation,
    StaleRevision,
)
from config_app.models import DEFAULT_ENV, GLOBAL, Layer, Namespace, Revision
from config_app.selectors import bump_generation, envs_of, merge_layers
from event_app.services import event_publish
from platformsite import live

log = logging.getLogger(__name__)

GROUP = "config.ns.{ns}"
#: SQLite answers "database is locked" when writers collide; a write is retried this many times.
LOCK_RETRIES = 30


def atomic_retrying(fn):
    """``transaction.atomic``, retried from the start while SQLite reports a lock (never mid-transaction)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        connection = transaction.get_connection()
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            with transaction.atomic():
                return fn(*args, **kwargs)
        for attempt in range(LOCK_RETRIES):
            try:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == LOCK_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.2)))
        raise AssertionError("unreachable")

    return wrapper


def group_name(namespace: str) -> str:
    return GROUP.format(ns=namespace)


# --- Namespaces -----------------------------------------------------------------------------------


def _check_schema(schema: Any) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise ConfigError("json_schema must be an object.", details={"json_schema": "not an object"})
    depth = nesting(schema)
    if depth > MAX_NESTING:  # as deep as the validators recurse: a 400, not their RecursionError
        raise ConfigError(
            f"json_schema nests {depth} levels deep; the limit is {MAX_NESTING}.",
            details={"json_schema": "nested too deeply", "nesting": depth, "limit": MAX_NESTING},
        )
    _check_text(schema, "json_schema")
    schemas.check_schema(schema)


def _check_secret_paths(paths: list[str]) -> list[str]:
    """Each path as written (``db/`` or ``""`` is a 400 ``invalid_path`` naming it, not ``db`` or nothing)."""
    for path in paths:
        parse_path(path)
    return list(paths)


@atomic_retrying
def namespace_create(
    *, name: str, description: str = "", json_schema: Any = None, secret_paths: list[str] | None = None
) -> Namespace:
    _check_schema(json_schema)
    paths = _check_secret_paths(secret_paths or [])
    if Namespace.objects.filter(name=name).exists():
        raise Conflict(f"The namespace {name!r} exists.", code="namespace_exists", details={"name": name})
    try:
        with transaction.atomic():
            return Namespace.objects.create(
                name=name, description=description, json_schema=json_schema, secret_paths=paths
            )
    except IntegrityError as exc:
        raise Conflict(
            f"The namespace {name!r} exists.", code="namespace_exists", details={"name": name}
        ) from exc


@atomic_retrying
def namespace_update(
    *,
    name: str,
    description: str | None = None,
    json_schema: Any = ...,
    secret_paths: list[str] | None = None,
    author: str = "",
    may_declassify: bool = True,
) -> Namespace:
    """Change a namespace's description, schema (checked against every resolved env) or secret paths.

    New secret paths are applied at once: each layer holding a value there gets a new revision
    with the value encrypted, and values no path covers any more decrypted (source
    ``secret-paths``). Uncovering a path decrypts what is there for every reader: a caller that
    may not read secrets (``may_declassify`` false) is refused.
    """
    namespace = _lock(name)
    fields = ["updated"]
    if description is not None:
        namespace.description = description
        fields.append("description")
    if json_schema is not ...:
        _check_schema(json_schema)
        namespace.json_schema = json_schema
        fields.append("json_schema")
    if secret_paths is not None:
        paths = _check_secret_paths(secret_paths)
        uncovered = [p for p in namespace.secret_paths if not sealing.covered(p, paths)]
        if uncovered and not may_declassify:
            raise Denied(
                "Taking paths out of secret_paths makes their values readable: it needs 'config:secrets'.",
                code="insufficient_scope",
                details={"secret_paths": uncovered},
            )
        namespace.secret_paths = paths
        fields.append("secret_paths")
    if json_schema is not ... and json_schema is not None:
        _validate(namespace, {}, affected_env=DEFAULT_ENV)
    if namespace.pk is None:
        namespace.save()
    else:
        namespace.save(update_fields=fields)
    if secret_paths is not None:
        for layer in Layer.objects.filter(namespace=namespace).select_related("head"):
            opened = sealing.open_uncovered(layer.head.data, namespace.secret_paths)
            sealed = sealing.seal(opened, namespace.secret_paths, layer.head.data, written=False)
            if sealed != layer.head.data:
                _commit(
                    namespace, layer.env, layer.head, sealed, author, "apply secret paths", "secret-paths"
                )
    return namespace


# --- Layers ---------------------------------------------------------------------------------------


def _copy(data: Any) -> Any:
    return copy.deepcopy(data)


def _lock(name: str) -> Namespace:
    """Lock ``global`` then ``name`` (always in this order: no deadlock between writers)."""
    Namespace.objects.get_or_create(name=GLOBAL, defaults={"description": "Inherited by every namespace."})
    global_ns = Namespace.objects.select_for_update().get(name=GLOBAL)
    if name == GLOBAL:
        return global_ns
    namespace = Namespace.objects.select_for_update().filter(name=name).first()
    if namespace is None:
        raise NotFound(f"There is no namespace {name!r}.", details={"namespace": name})
    return namespace


def _head(namespace: Namespace, env: str) -> Revision | None:
    layer = Layer.objects.filter(namespace=namespace, env=env).select_related("head").first()
    return layer.head if layer is not None else None


def _check_expected(namespace: Namespace, env: str, head: Revision | None, expected: int | None) -> None:
    current = head.number if head is not None else 0
    if expected is not None and expected != current:
        raise StaleRevision(
            f"{namespace.name}/{env} is at revision {current}, not {expected}: reload and retry.",
            details={"namespace": namespace.name, "env": env, "expected": expected, "current": current},
        )


def _check_size(data: dict) -> None:
    size = len(canonical(data))
    limit = settings.CONFIG_MAX_LAYER_BYTES
    if size > limit:
        raise LayerTooLarge(
            f"The layer would be {size} bytes; the limit is {limit}.", details={"size": size, "limit": limit}
        )


def _check_text(data: Any, field: str) -> None:
    found = find_unstorable(data)
    if found is not None:
        raise ConfigError(
            f"{field} holds a NUL character (U+0000) or a lone surrogate, which cannot be stored.",
            details={field: found},
        )


def _check_nesting(data: Any, extra: int = 0) -> None:
    depth = nesting(data) + extra
    if depth > MAX_NESTING:
        raise ConfigError(
            f"The layer would nest {depth} levels deep; the limit is {MAX_NESTING}.",
            details={"nesting": depth, "limit": MAX_NESTING},
        )


def _check_data(data: Any) -> None:
    if not isinstance(data, dict):
        raise ConfigError("A layer's data must be a JSON object.", details={"data": "not an object"})
    _check_nesting(data)
    _check_text(data, "data")
    reserved = find_reserved_keys(data, sealing.ENVELOPE_KEY)
    if reserved:
        raise ConfigError(
            f"The key {sealing.ENVELOPE_KEY!r} is reserved for encrypted values.",
            code="reserved_key",
            details={"paths": reserved[:20]},
        )


class _Head:
    __slots__ = ("data", "number")

    def __init__(self, data: dict, number: int) -> None:
        self.data = data
        self.number = number


def _validate(namespace: Namespace, candidate: dict[str, dict], *, affected_env: str) -> None:
    """Refuse the write if a resolved environment it affects breaks its namespace's schema.

    ``candidate`` maps ``"<ns>/<env>"`` to the layer data the write would store.
    """
    if namespace.name == GLOBAL:
        targets = list(Namespace.objects.filter(json_schema__isnull=False).exclude(name=GLOBAL))
        if namespace.json_schema is not None:
            targets.append(namespace)
    else:
        targets = [namespace] if namespace.json_schema is not None else []
    if not targets:
        return
    ids = [n.pk for n in targets if n.pk] + list(
        Namespace.objects.filter(name=GLOBAL).values_list("pk", flat=True)
    )
    envs = {affected_env} if affected_env != DEFAULT_ENV else envs_of(ids) | {DEFAULT_ENV}
    layers = {
        (layer.namespace.name, layer.env): _Head(layer.head.data, layer.number)
        for layer in Layer.objects.filter(namespace_id__in=ids).select_related("head", "namespace")
    }
    for key, data in candidate.items():
        ns, _, env = key.partition("/")
        layers[(ns, env)] = _Head(data, 0)
    failures: dict[str, Any] = {}
    for target in targets:
        validator = schemas.validator(target.json_schema)
        for env in sorted(envs):
            resolved, _ = merge_layers(target.name, env, layers)
            errors = schemas.schema_errors(validator, sealing.reveal(resolved))
            for error in errors[:20]:
                path = error.path
                secret = sealing.covered(path, target.secret_paths)
                # a message quotes the value: under a secret path only the failed keyword is named
                message = f"fails the schema's {error.keyword!r}" if secret else error.message[:300]
                failures.setdefault(f"{target.name}/{env}", {}).setdefault(path, []).append(message)
    if failures:
        paths = sorted({p for per_env in failures.values() for p in per_env})
        raise SchemaViolation(
            f"The change would make the configuration invalid at: {', '.join(paths[:10])}.",
            details={"failures": failures, "paths": paths},
        )


def _commit(
    namespace: Namespace, env: str, head: Revision | None, data: dict, author: str, comment: str, source: str
) -> Revision:
    number = (head.number if head is not None else 0) + 1
    try:
        with transaction.atomic():
            revision = Revision.objects.create(
                namespace=namespace,
                env=env,
                number=number,
                data=data,
                checksum=checksum(data),
                author=author[:200],
                comment=comment[:500],
                source=source[:64],
            )
            Layer.objects.update_or_create(
                namespace=namespace, env=env, defaults={"head": revision, "number": number}
            )
    except IntegrityError as exc:
        raise StaleRevision(
            f"{namespace.name}/{env} changed while writing: reload and retry.",
            details={"namespace": namespace.name, "env": env},
        ) from exc
    # Bumped now (read-your-writes in this process) and again after commit, so that an entry built
    # from the old rows by a concurrent reader between the two bumps is not kept.
    bump_generation(namespace.name)
    transaction.on_commit(lambda: _after_commit(namespace.name, env, number, author))
    return revision


def _after_commit(namespace: str, env: str, number: int, author: str) -> None:
    bump_generation(namespace)
    notify_watchers(namespace, env, number)
    try:
        atomic_retrying(event_publish)(
            type="config.namespace.changed",
            source="/platform/config",
            subject=f"{namespace}/{env}",
            data={"namespace": namespace, "env": env, "revision": number, "author": author},
        )
    except Exception:  # the change is committed; a lost event must not turn it into an error
        log.exception("config: could not publish the change event of %s/%s", namespace, env)


def notify_watchers(namespace: str, env: str, number: int) -> None:
    message = {
        "type": "config.changed",
        "namespace": namespace,
        "env": env,
        "revision": number,
        "change": uuid.uuid4().hex,
    }
    live.notify(group_name(namespace), message)


def _open_secrets_on(data: dict, segments: tuple[str, ...]) -> dict:
    """Decrypt, in place, the secret values on ``segments``: a write below a secret path edits its plain
    value (sealed again before it is stored) instead of the envelope."""
    node: Any = data
    for segment in segments:
        if not isinstance(node, dict) or segment not in node:
            break
        if sealing.is_envelope(node[segment]):
            node[segment] = sealing.open_envelope(node[segment])
        node = node[segment]
    return data


def _write(
    *, namespace: str, env: str, author: str, comment: str, source: str, expected_revision: int | None, change
) -> Revision:
    ns = _lock(namespace)
    head = _head(ns, env)
    _check_expected(ns, env, head, expected_revision)
    previous = head.data if head is not None else {}
    data = change(_copy(previous))
    if not isinstance(data, dict):
        raise ConfigError("A layer's data must be a JSON object.", details={"data": "not an object"})
    _check_size(data)
    data = sealing.seal(data, ns.secret_paths, previous)
    _validate(ns, {f"{ns.name}/{env}": data}, affected_env=env)
    return _commit(ns, env, head, data, author, comment, source)


@atomic_retrying
def layer_set(
    *,
    namespace: str,
    env: str,
    data: Any,
    author: str,
    comment: str = "",
    source: str = "api",
    expected_revision: int | None = None,
) -> Revision:
    """Replace a whole layer with ``data`` (a JSON object) as a new revision."""
    _check_data(data)
    return _write(
        namespace=namespace,
        env=env,
        author=author,
        comment=comment,
        source=source,
        expected_revision=expected_revision,
        change=lambda _previous: _copy(data),
    )


@atomic_retrying
def value_set(
    *,
    namespace: str,
    env: str,
    path: str,
    value: Any,
    author: str,
    comment: str = "",
    source: str = "api",
    expected_revision: int | None = None,
    merge: bool = False,
) -> Revision:
    """Set one path of a layer (``merge``: deep-merge an object into what is there)."""
    segments = parse_path(path)
    _check_nesting(value, extra=len(segments))
    _check_text(value, "value")
    if sealing.ENVELOPE_KEY in segments or find_reserved_keys(value, sealing.ENVELOPE_KEY):
        raise ConfigError(
            f"The key {sealing.ENVELOPE_KEY!r} is reserved for encrypted values.", code="reserved_key"
        )

    def change(previous: dict) -> dict:
        _open_secrets_on(previous, segments)
        new_value = value
        if merge:
            current = get_at(previous, segments)
            if isinstance(current, dict) and isinstance(value, dict):
                # merged into the plain values of any secrets inside, sealed again on the way in
                new_value = deep_merge(sealing.reveal(current), value)
        return set_at(previous, segments, new_value)

    return _write(
        namespace=namespace,
        env=env,
        author=author,
        comment=comment,
        source=source,
        expected_revision=expected_revision,
        change=change,
    )


@atomic_retrying
def value_delete(
    *,
    namespace: str,
    env: str,
    path: str,
    author: str,
    comment: str = "",
    source: str = "api",
    expected_revision: int | None = None,
) -> Revision:
    """Remove one path from a layer; a path that is not there is 404 and writes nothing."""
    segments = parse_path(path)

    def change(previous: dict) -> dict:
        _open_secrets_on(previous, segments)
        if missing(get_at(previous, segments)):
            raise NotFound(f"{namespace}/{env} has nothing at {path!r}.", details={"path": path})
        data, deleted = delete_at(previous, segments)
        if not deleted:  # a list item: get_at reads it, delete_at cannot remove it
            raise InvalidPath(
                f"{path} is a list item: set the whole list instead.",
                code="path_conflict",
                details={"path": path},
            )
        return data

    return _write(
        namespace=namespace,
        env=env,
        author=author,
        comment=comment,
        source=source,
        expected_revision=expected_revision,
        change=change,
    )


@atomic_retrying
def layer_rollback(
    *,
    namespace: str,
    env: str,
    to_revision: int,
    author: str,
    comment: str = "",
    expected_revision: int | None = None,
) -> Revision:
    """Make revision ``to_revision``'s data the layer's again, as a new revision."""
    ns = _lock(namespace)
    target = Revision.objects.filter(namespace=ns, env=env, number=to_revision).first()
    if target is None:
        raise NotFound(f"{namespace}/{env} has no revision {to_revision}.", details={"revision": to_revision})
    return _write(
        namespace=namespace,
        env=env,
        author=author,
        comment=comment or f"rollback to revision {to_revision}",
        source="rollback",
        expected_revision=expected_revision,
        change=lambda _previous: _copy(target.data),
    )
