"""Reads of the config service: resolution (served from the shared cache) and history queries.

A resolved document is cached per (namespace, env) together with the two generations it was
built under: the ``global`` namespace's and its own.  Every write bumps its namespace's
generation after commit, so a warm read is one multi-get from the shared cache (the entry and
both generations) and no database query; a write to ``global`` invalidates every namespace.
While the shared cache cannot be reached, documents are resolved from the database.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from config_app import sealing
from config_app.documents import canonical, deep_merge
from config_app.errors import NotFound
from config_app.models import DEFAULT_ENV, GLOBAL, Layer, Namespace, Revision
from platformsite import invalidation, localstate
from platformsite.cache import CACHE_DOWN

ENTRY_KEY = "config:resolved:{ns}:{env}"
GEN_KEY = "config:gen:{ns}"


def gen_key(namespace: str) -> str:
    return GEN_KEY.format(ns=namespace)


def bump_generation(namespace: str) -> None:
    cache.set(gen_key(namespace), uuid.uuid4().hex, timeout=None)
    invalidation.announce(TOPIC, namespace)  # every process drops its copies (this one at once)


def layer_keys(namespace: str, env: str) -> list[tuple[str, str]]:
    """The layers a resolution merges, lowest first."""
    order = [(GLOBAL, DEFAULT_ENV), (GLOBAL, env), (namespace, DEFAULT_ENV), (namespace, env)]
    seen: list[tuple[str, str]] = []
    for key in order:
        if key not in seen:
            seen.append(key)
    return seen


@dataclass(frozen=True, slots=True)
class Resolved:
    """A resolved (namespace, env) document as cached: data may hold secret envelopes."""

    namespace: str
    env: str
    revision: int
    revisions: dict[str, int]
    etag: str
    data: dict
    has_secrets: bool
    masked_body: bytes
    gens: tuple[str, str]

    def etag_for(self, revealed: bool) -> str:
        """The ETag of an answer: the document's, or for one showing the secrets in clear (another
        representation than the masked one) the document's with ``;secrets`` before its quote."""
        return self.etag[:-1] + ';secrets"' if revealed else self.etag

    def body(self, data: Any, path: str | None = None) -> dict[str, Any]:
        out = {
            "namespace": self.namespace,
            "env": self.env,
            "revision": self.revision,
            "revisions": self.revisions,
            "etag": self.etag,
            "data": data,
        }
        if path is not None:
            out["path"] = path
        return out


def _heads(namespace: str, env: str) -> dict[tuple[str, str], Revision]:
    wanted = layer_keys(namespace, env)
    layers = Layer.objects.filter(
        namespace__name__in={ns for ns, _ in wanted}, env__in={e for _, e in wanted}
    ).select_related("head", "namespace")
    return {(layer.namespace.name, layer.env): layer.head for layer in layers}


def merge_layers(namespace: str, env: str, heads: dict[tuple[str, str], Any]) -> tuple[dict, dict[str, int]]:
    """Deep-merge the layers' data (``heads`` maps (ns, env) to an object with ``data`` and ``number``)."""
    data: dict = {}
    revisions: dict[str, int] = {}
    for key in layer_keys(namespace, env):
        head = heads.get(key)
        revisions[f"{key[0]}/{key[1]}"] = head.number if head is not None else 0
        if head is not None:
            data = deep_merge(data, head.data, merge_opaque=sealing.merge_secret)
    return sealing.as_merged(data), revisions


def build(namespace: str, env: str, gens: tuple[str, str]) -> Resolved:
    if namespace != GLOBAL and not Namespace.objects.filter(name=namespace).exists():
        raise NotFound(f"There is no namespace {namespace!r}.", details={"namespace": namespace})
    data, revisions = merge_layers(namespace, env, _heads(namespace, env))
    revision = sum(revisions.values())
    digest = hashlib.sha256(json.dumps(revisions, sort_keys=True).encode() + canonical(data)).hexdigest()
    etag = f'"{revision}-{digest[:16]}"'
    has_secrets = sealing.has_envelopes(data)
    masked = sealing.mask(data) if has_secrets else data
    resolved = Resolved(namespace, env, revision, revisions, etag, data, has_secrets, b"", gens)
    masked_body = json.dumps(resolved.body(masked), separators=(",", ":")).encode()
    return Resolved(namespace, env, revision, revisions, etag, data, has_secrets, masked_body, gens)


def current_gens(namespace: str, found: dict[str, Any] | None = None) -> tuple[str, str]:
    keys = [gen_key(GLOBAL), gen_key(namespace)]
    if found is None:
        found = cache.get_many(keys)
    gens = []
    for key in keys:
        value = found.get(key)
        if value is None:
            value = uuid.uuid4().hex
            if not cache.add(key, value, timeout=None):
                value = cache.get(key) or value
        gens.append(value)
    return gens[0], gens[1]


#: This process's copies of resolved documents: (namespace, env) -> (last checked, entry).
_local: dict[tuple[str, str], tuple[float, Resolved]] = {}
MAX_LOCAL = 10_000
#: Invalidation topic; the key is the namespace written (``global``: every namespace).
TOPIC = "config"


def forget_local() -> None:
    _local.clear()


def _forget(namespace: str) -> None:
    # A namespace's entries also hold global's layers; config writes are rare: drop them all.
    _local.clear()


invalidation.register(TOPIC, _forget, forget_local)
_stats = localstate.register_cache("config.resolved", size=lambda: len(_local), reset=forget_local)


def resolve(namespace: str, env: str, *, fresh: bool = False) -> Resolved:
    """The resolved document of (namespace, env), without a database query when warm.

    A process keeps its own copy.  While it hears invalidation announcements
    (:mod:`platformsite.invalidation`) the copy is used as it is, with no round trip; otherwise
    (or ``CONFIG_LOCAL_CACHE_SECONDS`` after its last check) it is checked against the two
    generations in the shared cache (one small multi-get).  The shared entry itself is fetched
    only when they changed, and the database read only when no node has built the entry yet.
    ``fresh`` always checks: watchers do.
    """
    resolved = _resolve(namespace, env, fresh=fresh, may_build=True)
    assert resolved is not None  # built when missing
    return resolved


def resolve_warm(namespace: str, env: str) -> Resolved | None:
    """:func:`resolve` without a database query: None if the document has to be built first."""
    return _resolve(namespace, env, fresh=False, may_build=False)


def _resolve(namespace: str, env: str, *, fresh: bool, may_build: bool) -> Resolved | None:
    key = (namespace, env)
    now = time.monotonic()
    local = _local.get(key)
    if (
        local is not None
        and not fresh
        and now - local[0] < invalidation.trust_seconds(settings.CONFIG_LOCAL_CACHE_SECONDS)
    ):
        _stats.hits += 1
        return local[1]
    _stats.misses += 1
    taken = invalidation.epoch()
    gen_keys = [gen_key(GLOBAL), gen_key(namespace)]
    try:
        found = cache.get_many(gen_keys)
        gens = current_gens(namespace, found)
    except CACHE_DOWN:
        # The shared cache is down (Redis restarting): read the database, and keep no copy, as
        # no write can be announced or checked against meanwhile.
        return build(namespace, env, ("", "")) if may_build else None
    if local is not None and local[1].gens == gens:
        entry = local[1]
    else:
        entry_key = ENTRY_KEY.format(ns=namespace, env=env)
        entry = cache.get(entry_key)
        if not (isinstance(entry, Resolved) and entry.gens == gens):
            if not may_build:
                return None
            entry = build(namespace, env, gens)
            try:
                cache.set(entry_key, entry, timeout=None)
            except CACHE_DOWN:
                return entry  # went down meanwhile: the document as read, no copy kept
    if invalidation.still(taken):  # else a write was announced meanwhile: keep no copy
        if len(_local) >= MAX_LOCAL:
            _local.clear()
        _local[key] = (now, entry)
        if not invalidation.still(taken):  # announced between the check and the store
            _local.pop(key, None)
    return entry


def generations(namespace: str) -> tuple[Any, Any]:
    found = cache.get_many([gen_key(GLOBAL), gen_key(namespace)])
    return found.get(gen_key(GLOBAL)), found.get(gen_key(namespace))


def namespace_get(name: str) -> Namespace:
    namespace = Namespace.objects.filter(name=name).first()
    if namespace is None:
        if name == GLOBAL:
            return Namespace(name=GLOBAL, description="Inherited by every namespace.")
        raise NotFound(f"There is no namespace {name!r}.", details={"namespace": name})
    return namespace


def layer_head(namespace: Namespace, env: str) -> Revision | None:
    if namespace.pk is None:
        return None
    return Revision.objects.filter(namespace=namespace, env=env).order_by("-number").first()


def revision_get(namespace: Namespace, env: str, number: int) -> Revision:
    revision = (
        Revision.objects.filter(namespace=namespace, env=env, number=number).first()
        if namespace.pk is not None
        else None
    )
    if revision is None:
        raise NotFound(
            f"{namespace.name}/{env} has no revision {number}.",
            details={"namespace": namespace.name, "env": env, "revision": number},
        )
    return revision


def layers_of(namespace: Namespace) -> QuerySet[Layer]:
    return Layer.objects.filter(namespace_id=namespace.pk).select_related("head").order_by("env")


def envs_of(namespace_ids: list[int]) -> set[str]:
    return set(Layer.objects.filter(namespace_id__in=namespace_ids).values_list("env", flat=True))


def audit_log(*, namespace: Namespace | None = None, env: str | None = None) -> QuerySet[Revision]:
    """Revisions (of one namespace, one layer), for the history lists and their filters."""
    revisions = Revision.objects.select_related("namespace")
    if namespace is not None:
        revisions = revisions.filter(namespace_id=namespace.pk) if namespace.pk else revisions.none()
    if env:
        revisions = revisions.filter(env=env)
    return revisions
