"""Reads of the discovery service: the cached service documents (the read layer) and lookups.

A service's document (its versions and nodes) is kept in the shared cache, rendered as JSON,
under one key per service name, together with its change index and ETag.  Every write replaces
it after commit (:func:`refresh_service`) and announces the change to every process
(:mod:`platformsite.invalidation`), so a warm lookup answers from this process's copy with no
round trip, or (while announcements cannot be heard) one cache read, and never a query.
Each node's latest heartbeat is in the cache too (:func:`heartbeat_key`), written by the
heartbeat endpoints without touching the database.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q

from discovery_app.models import Node, Service, ServiceIndex
from platformsite import invalidation, localstate
from platformsite.cache import CACHE_DOWN

DOC_PREFIX = "discovery:svc:"
INDEX_PREFIX = "discovery:idx:"
HEARTBEAT_PREFIX = "discovery:hb:"
DEGRADED_KEY = "discovery:degraded"
#: A heartbeat entry outlives its node's TTL by this much, so nodes held by the safety valve
#: can still renew; the sweep deletes it as soon as the node expires or is removed.
HEARTBEAT_GRACE_SECONDS = 3600
DOC_TIMEOUT = 24 * 3600


def heartbeat_key(node_id: str) -> str:
    return HEARTBEAT_PREFIX + node_id


def doc_key(name: str) -> str:
    return DOC_PREFIX + name


def index_key(name: str) -> str:
    return INDEX_PREFIX + name


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """A service's document as cached: index, ETag and JSON body (None: no such service)."""

    name: str
    index: int
    etag: str
    body: bytes | None

    @property
    def exists(self) -> bool:
        return self.body is not None

    def document(self) -> dict[str, Any]:
        assert self.body is not None
        return json.loads(self.body)


def node_summary(node: Node | dict[str, Any]) -> dict[str, Any]:
    """The public shape of a node inside a service document and a result."""
    get = node.get if isinstance(node, dict) else lambda field: getattr(node, field)
    return {
        "id": get("id"),
        "address": get("address"),
        "port": get("port"),
        "metadata": get("metadata"),
        "status": get("status"),
        "interval": get("interval"),
        "ttl": get("ttl"),
        "registered": iso(get("registered")),
    }


def service_document(name: str) -> tuple[int, dict[str, Any] | None]:
    """Build a service's document from the database: (index, document or None if unknown)."""
    index = ServiceIndex.objects.filter(name=name).values_list("index", flat=True).first() or 0
    versions = list(Service.objects.filter(name=name).order_by("version"))
    if not versions:
        return index, None
    nodes = (
        Node.objects.filter(service__name=name)
        .order_by("id")
        .values(
            "id",
            "service_id",
            "address",
            "port",
            "metadata",
            "endpoints",
            "status",
            "interval",
            "ttl",
            "registered",
        )
    )
    by_version: dict[int, list[dict[str, Any]]] = {service.pk: [] for service in versions}
    endpoints: dict[int, tuple[datetime, list]] = {}
    for node in nodes:
        by_version[node["service_id"]].append(node_summary(node))
        latest = endpoints.get(node["service_id"])
        if latest is None or node["registered"] > latest[0]:
            endpoints[node["service_id"]] = (node["registered"], node["endpoints"])
    document = {
        "name": name,
        "index": index,
        "versions": [
            {
                "version": service.version,
                "metadata": service.metadata,
                "endpoints": endpoints.get(service.pk, (None, []))[1],
                "nodes": by_version[service.pk],
            }
            for service in versions
        ],
    }
    return index, document


def make_etag(name: str, index: int, variant: str = "") -> str:
    digest = hashlib.sha1(f"{name}\0{index}\0{variant}".encode(), usedforsecurity=False).hexdigest()
    return f'"{index}-{digest[:16]}"'


def _built(name: str) -> tuple[ServiceEntry, dict[str, Any] | None]:
    index, document = service_document(name)
    body = None if document is None else json.dumps(document, separators=(",", ":")).encode()
    return ServiceEntry(name, index, make_etag(name, index), body), document


def _store(name: str) -> tuple[ServiceEntry, dict[str, Any] | None]:
    entry, document = _built(name)
    cache.set_many({doc_key(name): entry, index_key(name): entry.index}, timeout=DOC_TIMEOUT)
    return entry, document


def refresh_service(name: str) -> tuple[ServiceEntry, dict[str, Any] | None]:
    """Rebuild and cache a service's document; called after every committed change.

    Two writers committing close together may store their documents out of order; each one
    checks the committed index after storing and rebuilds if it lost, so the cache always ends
    with the newest document.
    """
    for _ in range(5):
        entry, document = _store(name)
        current = ServiceIndex.objects.filter(name=name).values_list("index", flat=True).first() or 0
        if current <= entry.index:
            break
    invalidation.announce(TOPIC, name)
    return entry, document


#: This process's copies of service entries: name -> (last checked, entry).
_local: dict[str, tuple[float, ServiceEntry]] = {}
MAX_LOCAL = 10_000
#: Invalidation topic; the key is the service name.
TOPIC = "discovery"


def service_entry(name: str, *, at_least: int = 0) -> ServiceEntry:
    """The cached document of a service (built on a cache miss), of index ``at_least`` or newer.

    The entry is kept in this process and used as it is while announcements are heard
    (:mod:`platformsite.invalidation`); otherwise it is read from the shared cache each time, or
    every ``DISCOVERY_LOCAL_CACHE_SECONDS`` if that is set.  A blocking query woken by index N
    asks for ``at_least=N``: a copy older than that (the announcement has not reached this
    process yet) is skipped, so the answer is never older than the index that woke it.
    """
    entry = _service_entry(name, may_build=True, at_least=at_least)
    assert entry is not None  # built when missing
    return entry


def service_entry_warm(name: str) -> ServiceEntry | None:
    """:func:`service_entry` without a database query: None if the entry has to be built first."""
    return _service_entry(name, may_build=False)


def _service_entry(name: str, *, may_build: bool, at_least: int = 0) -> ServiceEntry | None:
    now = time.monotonic()
    held = _local.get(name)
    if (
        held is not None
        and held[1].index >= at_least
        and now - held[0] < invalidation.trust_seconds(settings.DISCOVERY_LOCAL_CACHE_SECONDS)
    ):
        _stats.hits += 1
        return held[1]
    _stats.misses += 1
    taken = invalidation.epoch()
    try:
        entry = cache.get(doc_key(name))
    except CACHE_DOWN:
        # The shared cache is down (Redis restarting): read the database, and keep no copy, as
        # no change can be announced meanwhile.
        return _built(name)[0] if may_build else None
    if entry is not None and entry.index < at_least:
        entry = None  # the shared copy lags the index (stored out of order): rebuild it
    if entry is None:
        if not may_build:
            return None
        entry, _ = refresh_service(name)
    elif invalidation.still(taken):  # else a change was announced meanwhile: keep no copy
        if len(_local) >= MAX_LOCAL:
            _local.clear()
        _local[name] = (now, entry)
        if not invalidation.still(taken):  # announced between the check and the store
            _local.pop(name, None)
    return entry


def forget_local_entries() -> None:
    _local.clear()


invalidation.register(TOPIC, lambda name: _local.pop(name, None), forget_local_entries)
_stats = localstate.register_cache("discovery.services", size=lambda: len(_local), reset=forget_local_entries)


def current_index(name: str) -> int:
    """The service's change index, from the cache (cheap enough to poll)."""
    index = cache.get(index_key(name))
    if index is None:
        index = service_entry(name).index
    return index


def filter_document(
    document: dict[str, Any],
    *,
    version: str | None = None,
    labels: list[tuple[str, str]] | None = None,
    passing: bool = False,
    failing: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The document narrowed to one version, to nodes with all ``labels``, or to passing nodes
    (alive, and none of the ``failing`` ones: the monitor's nodes with a critical check down)."""
    versions = []
    for entry in document["versions"]:
        if version is not None and entry["version"] != version:
            continue
        nodes = [
            node
            for node in entry["nodes"]
            if (not passing or (node["status"] == Node.Status.PASSING and node["id"] not in failing))
            and all(node["metadata"].get(key) == value for key, value in labels or ())
        ]
        versions.append({**entry, "nodes": nodes})
    return {**document, "versions": versions}


def services_summary(names: list[str]) -> list[dict[str, Any]]:
    """Versions and node counts of the named services (two queries)."""
    rows = (
        Service.objects.filter(name__in=names)
        .annotate(
            node_count=Count("nodes"),
            passing_count=Count("nodes", filter=Q(nodes__status=Node.Status.PASSING)),
        )
        .order_by("name", "version")
        .values("name", "version", "metadata", "node_count", "passing_count")
    )
    indexes = dict(ServiceIndex.objects.filter(name__in=names).values_list("name", "index"))
    summary: dict[str, dict[str, Any]] = {
        name: {"name": name, "index": indexes.get(name, 0), "nodes": 0, "passing": 0, "versions": []}
        for name in names
    }
    for row in rows:
        item = summary[row["name"]]
        item["versions"].append(
            {
                "version": row["version"],
                "metadata": row["metadata"],
                "nodes": row["node_count"],
                "passing": row["passing_count"],
            }
        )
        item["nodes"] += row["node_count"]
        item["passing"] += row["passing_count"]
    return [summary[name] for name in names]


def listed_service_names():
    """Service names that have at least one version (a queryset of ServiceIndex rows)."""
    return ServiceIndex.objects.filter(name__in=Service.objects.values("name"))


def last_heartbeats(node_ids: list[str], chunk: int = 1000) -> dict[str, float]:
    """The latest heartbeat of each node, from the cache (nodes without one are left out).

    Read ``chunk`` keys at a time: Redis serves one command at a time, and heartbeats should not
    queue behind a single ten-thousand-key read."""
    beats: dict[str, float] = {}
    for start in range(0, len(node_ids), chunk):
        keys = [heartbeat_key(node_id) for node_id in node_ids[start : start + chunk]]
        beats.update((key[len(HEARTBEAT_PREFIX) :], value[0]) for key, value in cache.get_many(keys).items())
    return beats


def node_detail(node: Node) -> dict[str, Any]:
    beat = last_heartbeats([node.id]).get(node.id)
    return {
        **node_summary(node),
        "service": node.service.name,
        "version": node.service.version,
        "endpoints": node.endpoints,
        "deregister_after": node.deregister_after,
        "last_heartbeat": iso(beat if beat is not None and beat > node.last_heartbeat.timestamp() else None)
        or iso(node.last_heartbeat),
        "critical_since": iso(node.critical_since),
    }


def degraded_state() -> dict[str, Any] | None:
    """The safety valve's state: None, or {since, held, total, share} while degraded."""
    return cache.get(DEGRADED_KEY)


def registry_state() -> dict[str, Any]:
    counts = Node.objects.aggregate(
        nodes=Count("id"), passing=Count("id", filter=Q(status=Node.Status.PASSING))
    )
    state = degraded_state()
    return {
        "degraded": state is not None,
        "degraded_state": state,
        "services": listed_service_names().count(),
        "nodes": counts["nodes"],
        "passing": counts["passing"],
    }
