"""Writes of the discovery service: registration, deregistration, heartbeats and the sweep.

Every change records a :class:`~discovery_app.models.Result` under the service's next index;
once the transaction commits, the service's cached document is rebuilt, the results are pushed
to websocket watchers and platform events are published (``discovery.node.registered``,
``.deregistered``, ``.expired``; ``discovery.registry.degraded`` / ``.recovered``).

Heartbeats never touch the database: :func:`node_heartbeat` renews the node's entry in the
shared cache, and :func:`registry_sweep` (beat, every second) reads those entries to expire
nodes past their TTL and flushes the heartbeat times to the database in bulk.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from rest_framework.exceptions import NotFound

from discovery_app import deadlines, selectors
from discovery_app.models import Node, Result, Service, ServiceIndex
from event_app.services import event_publish, event_publish_many
from platformsite.api.errors import Conflict, Denied
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

log = logging.getLogger(__name__)

SOURCE = "/platform/discovery"
SWEEP_LOCK_KEY = "discovery:sweep-lock"
FULL_SWEEP_KEY = "discovery:full-sweep-at"
ALL_GROUP = "discovery.all"
# \Z, not $: "$" also matches before a trailing newline ("orders\n" would pass).
SERVICE_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}"
NODE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}"
SERVICE_NAME = re.compile(rf"^{SERVICE_NAME_PATTERN}\Z")
NODE_ID = re.compile(rf"^{NODE_ID_PATTERN}\Z")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}\Z")
HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
#: What an address may be made of: host names, IPv4, IPv6 (with an interface scope such as %eth0).
ADDRESS_CHARS = re.compile(r"^[A-Za-z0-9._:%-]+\Z")
#: Deepest nesting of a node's endpoints (their request/response schemas).
MAX_ENDPOINTS_DEPTH = 100
MAX_INTERVAL = 86_400


class NodeNotRegistered(NotFound):
    """A heartbeat for a node the registry does not hold (never registered, expired or removed)."""

    default_code = "node_not_registered"
    default_detail = "This node is not registered (it expired or was removed): register it again."


def group_name(service: str) -> str:
    """The channel-layer group of a service's watchers (names are limited to 100 characters)."""
    if len(service) <= 80:
        return f"discovery.svc.{service}"
    return "discovery.svc." + hashlib.sha1(service.encode(), usedforsecurity=False).hexdigest()


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# --- Validation ---------------------------------------------------------------------------------


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def is_valid_address(address: str) -> bool:
    """An IPv4/IPv6 address or an RFC 1123 host name."""
    if not ADDRESS_CHARS.match(address):
        return False
    try:
        ipaddress.ip_address(address)
        return True
    except ValueError:
        pass
    name = address[:-1] if address.endswith(".") else address
    if not name or len(name) > 253 or name.replace(".", "").isdigit():
        return False
    return all(HOST_LABEL.match(label) for label in name.split("."))


def _validate_labels(field_name: str, metadata: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(metadata, dict):
        errors[field_name] = ["Must be an object of string keys and string values."]
    elif not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        errors[field_name] = ["Keys and values must be strings."]
    elif any(UNSTORABLE_CHARS.search(k) or UNSTORABLE_CHARS.search(v) for k, v in metadata.items()):
        errors[field_name] = ["Keys and values may not contain NUL characters or lone surrogates."]
    elif _json_size(metadata) > settings.DISCOVERY_MAX_METADATA_BYTES:
        errors[field_name] = [f"Larger than {settings.DISCOVERY_MAX_METADATA_BYTES} bytes as JSON."]


def _validate_endpoints(endpoints: Any, errors: dict[str, list[str]]) -> None:
    if not isinstance(endpoints, list):
        errors["endpoints"] = ["Must be a list of {name, request, response, metadata}."]
        return
    for position, endpoint in enumerate(endpoints):
        if (
            not isinstance(endpoint, dict)
            or not isinstance(endpoint.get("name"), str)
            or not endpoint["name"]
        ):
            errors["endpoints"] = [f"Endpoint {position} must be an object with a non-empty 'name'."]
            return
        unknown = set(endpoint) - {"name", "request", "response", "metadata"}
        if unknown:
            errors["endpoints"] = [f"Endpoint {position} has unknown fields: {', '.join(sorted(unknown))}."]
            return
        meta = endpoint.get("metadata", {})
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            errors["endpoints"] = [f"Endpoint {position} metadata must map strings to strings."]
            return
    if problem := unstorable(endpoints, max_depth=MAX_ENDPOINTS_DEPTH):
        errors["endpoints"] = [problem]
        return
    if _json_size(endpoints) > settings.DISCOVERY_MAX_ENDPOINTS_BYTES:
        errors["endpoints"] = [f"Larger than {settings.DISCOVERY_MAX_ENDPOINTS_BYTES} bytes as JSON."]


def validate_registration(
    *,
    node_id: str,
    service: str,
    version: str,
    address: str,
    port: Any,
    metadata: Any,
    endpoints: Any,
    service_metadata: Any,
    interval: Any,
    ttl: Any,
    deregister_after: Any,
) -> None:
    """Raise a ValidationError naming every bad field (``ttl=None``: the default, 3 x interval)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        errors["id"] = ["Use 1-200 letters, digits, '.', '_', ':' or '-'."]
    if not isinstance(service, str) or not SERVICE_NAME.match(service):
        errors["service"] = ["Use 1-200 letters, digits, '.', '_' or '-'."]
    if not isinstance(version, str) or not VERSION.match(version):
        errors["version"] = ["Use 1-100 letters, digits, '.', '_', '+' or '-'."]
    if not isinstance(address, str) or not is_valid_address(address):
        errors["address"] = ["Must be an IP address or a host name."]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors["port"] = ["Must be an integer from 1 to 65535."]
    _validate_labels("metadata", metadata, errors)
    _validate_labels("service_metadata", service_metadata, errors)
    _validate_endpoints(endpoints, errors)
    for name, value, low in (
        ("interval", interval, 1),
        ("ttl", ttl, 1),
        ("deregister_after", deregister_after, 0),
    ):
        if name == "ttl" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_INTERVAL:
            errors[name] = [f"Must be an integer from {low} to {MAX_INTERVAL} (seconds)."]
    if "interval" not in errors and "ttl" not in errors and ttl is not None and ttl < interval:
        errors["ttl"] = ["Must be at least the heartbeat interval."]
    if errors:
        raise ValidationError(errors)


# --- Results, index, publication ------------------------------------------------------------------


@dataclass
class _Change:
    action: str
    service: str
    version: str
    node: dict[str, Any]
    reason: str


def _record(changes: list[_Change], now: float) -> list[Result]:
    """Give each change its service's next index and store it as a Result; publish after commit."""
    by_service: dict[str, list[_Change]] = defaultdict(list)
    for change in changes:
        by_service[change.service].append(change)
    results: list[Result] = []
    timestamp = to_datetime(now)
    for name in sorted(by_service):  # a fixed order: no deadlock between two sweeps or writers
        batch = by_service[name]
        ServiceIndex.objects.get_or_create(name=name)
        ServiceIndex.objects.filter(name=name).update(index=F("index") + len(batch))
        last = ServiceIndex.objects.filter(name=name).values_list("index", flat=True).get()
        for offset, change in enumerate(batch):
            results.append(
                Result(
                    action=change.action,
                    service=name,
                    version=change.version,
                    node_id=change.node["id"],
                    node=change.node,
                    reason=change.reason,
                    timestamp=timestamp,
                    index=last - len(batch) + 1 + offset,
                )
            )
    Result.objects.bulk_create(results)
    transaction.on_commit(partial(publish_results, results))
    return results


def result_data(result: Result) -> dict[str, Any]:
    return {
        "action": result.action,
        "service": result.service,
        "version": result.version,
        "node": result.node,
        "reason": result.reason,
        "timestamp": selectors.iso(result.timestamp),
        "index": result.index,
    }


def _group_send(groups: Iterable[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    send = async_to_sync(layer.group_send)
    for group in groups:
        try:
            send(group, message)
        except Exception:  # a broken channel layer must not fail the write that committed
            log.exception("discovery: could not notify watchers", extra={"group": group})


def publish_results(results: list[Result]) -> None:
    """After commit: rebuild the cached documents and push the changes to watchers."""
    by_service: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_service[result.service].append(result)
    for name, batch in by_service.items():
        entry, document = selectors.refresh_service(name)
        # Encoded once here rather than once per watcher by each consumer.
        text = json.dumps(
            {
                "type": "change",
                "service": name,
                "index": entry.index,
                "results": [result_data(result) for result in batch],
                "document": document,
            },
            separators=(",", ":"),
        )
        message = {"type": "discovery.change", "service": name, "index": entry.index, "text": text}
        _group_send([group_name(name)], message)
        _group_send([ALL_GROUP], {**message, "scope": "all"})


def _publish_event(type_: str, node_id: str, data: dict[str, Any]) -> None:
    try:
        event_publish(type=type_, source=SOURCE, subject=node_id, data=data)
    except Exception:
        log.exception("discovery: could not publish event", extra={"type": type_})


def _events_after_commit(type_: str, items: list[tuple[str, dict[str, Any]]]) -> None:
    """One event per node, all in one transaction once the change has committed."""

    def send() -> None:
        try:
            event_publish_many(
                events=[
                    {"type": type_, "source": SOURCE, "subject": node_id, "data": data}
                    for node_id, data in items
                ]
            )
        except Exception:
            log.exception("discovery: could not publish events", extra={"type": type_, "count": len(items)})

    if items:
        transaction.on_commit(send)


def _snapshot(node: Node, version: str) -> dict[str, Any]:
    return {**selectors.node_summary(node), "version": version}


def _event_data(node: Node, service: Service, **extra: Any) -> dict[str, Any]:
    return {
        "service": service.name,
        "version": service.version,
        "node": node.id,
        "address": node.address,
        "port": node.port,
        **extra,
    }


def _set_heartbeat(node_id: str, service: str, ttl: int, now: float) -> None:
    cache.set(
        selectors.heartbeat_key(node_id),
        (now, ttl, service),
        timeout=ttl + selectors.HEARTBEAT_GRACE_SECONDS,
    )
    deadlines.index({node_id: now + ttl})


def _drop_heartbeats(node_ids: list[str]) -> None:
    for node_id in node_ids:
        _node_meta.pop(node_id, None)
    if node_ids:
        cache.delete_many([selectors.heartbeat_key(node_id) for node_id in node_ids])
        deadlines.drop(node_ids)


def _drop_empty_services(service_ids: Iterable[int]) -> None:
    Service.objects.filter(pk__in=set(service_ids), nodes__isnull=True).delete()


# --- Registration -------------------------------------------------------------------------------


@transaction.atomic
def node_register(
    *,
    node_id: str,
    service: str,
    version: str = "latest",
    address: str,
    port: int,
    metadata: dict[str, str] | None = None,
    endpoints: list[dict[str, Any]] | None = None,
    service_metadata: dict[str, str] | None = None,
    interval: int | None = None,
    ttl: int | None = None,
    deregister_after: int | None = None,
    now: float | None = None,
) -> tuple[Node, bool]:
    """Register a node of ``service`` (``version``), or update it if its id is registered already.

    Returns the node and whether it was created.  The same id under another service is a 409
    (``node_id_taken``); invalid input a ValidationError naming the fields.  Either way the
    registry is left unchanged.
    """
    now = time.time() if now is None else now
    metadata = {} if metadata is None else metadata
    endpoints = [] if endpoints is None else endpoints
    interval = settings.DISCOVERY_DEFAULT_INTERVAL if interval is None else interval
    deregister_after = settings.DISCOVERY_DEREGISTER_AFTER if deregister_after is None else deregister_after
    validate_registration(
        node_id=node_id,
        service=service,
        version=version,
        address=address,
        port=port,
        metadata=metadata,
        endpoints=endpoints,
        service_metadata=service_metadata if service_metadata is not None else {},
        interval=interval,
        ttl=ttl,
        deregister_after=deregister_after,
    )
    if ttl is None:  # 3 x interval, but no longer than any TTL may be
        ttl = min(3 * interval, MAX_INTERVAL)
    existing = Node.objects.select_for_update().select_related("service").filter(id=node_id).first()
    if existing is not None and existing.service.name != service:
        raise Conflict(
            f"Node {node_id!r} is registered under service {existing.service.name!r}.",
            "node_id_taken",
            {"id": node_id, "service": existing.service.name},
        )
    target, _ = Service.objects.get_or_create(
        name=service, version=version, defaults={"metadata": service_metadata or {}}
    )
    if service_metadata is not None and target.metadata != service_metadata:
        target.metadata = service_metadata
        target.save(update_fields=["metadata", "updated"])
    stamp = to_datetime(now)
    values = {
        "service": target,
        "address": address,
        "port": port,
        "metadata": metadata,
        "endpoints": endpoints,
        "interval": interval,
        "ttl": ttl,
        "deregister_after": deregister_after,
        "registered": stamp,
        "last_heartbeat": stamp,
        "status": Node.Status.PASSING,
        "critical_since": None,
    }
    if existing is None:
        try:
            with transaction.atomic():
                node = Node.objects.create(id=node_id, **values)
        except IntegrityError as exc:  # the same id registered concurrently: let the caller retry
            raise Conflict(
                f"Node {node_id!r} is being registered concurrently; retry.", "registration_conflict"
            ) from exc
        created = True
    else:
        node = existing
        previous_service = existing.service_id
        for name, value in values.items():
            setattr(node, name, value)
        node.save()
        created = False
        if previous_service != target.pk:
            _drop_empty_services([previous_service])
    _record(
        [
            _Change(
                "create" if created else "update", service, version, _snapshot(node, version), "registered"
            )
        ],
        now,
    )
    _node_meta.pop(node_id, None)
    transaction.on_commit(partial(_set_heartbeat, node_id, service, ttl, now))
    _events_after_commit("discovery.node.registered", [(node_id, _event_data(node, target, created=created))])
    return node, created


@transaction.atomic
def node_deregister(*, node_id: str, reason: str = "deregistered", now: float | None = None) -> None:
    """Remove a node from the registry (404 if it is not there)."""
    now = time.time() if now is None else now
    node = Node.objects.select_for_update().select_related("service").filter(id=node_id).first()
    if node is None:
        raise NotFound(f"No node {node_id!r} is registered.")
    service = node.service
    node.delete()
    _drop_empty_services([service.pk])
    node.id = node_id  # delete() keeps it for a CharField key, but be explicit
    _record([_Change("delete", service.name, service.version, _snapshot(node, service.version), reason)], now)
    transaction.on_commit(partial(_drop_heartbeats, [node_id]))
    _events_after_commit(
        "discovery.node.deregistered", [(node_id, _event_data(node, service, reason=reason))]
    )


# --- Heartbeats (hot path: the shared cache only) ------------------------------------------------


#: Process-local memo of node id -> (ttl, service, valid until): lets a heartbeat renew its entry
#: in one write (no read first).  Whether the node is still registered is always decided by the
#: shared cache: the write only happens if the entry exists.
_node_meta: dict[str, tuple[int, str, float]] = {}
NODE_META_SECONDS = 60.0
MAX_NODE_META = 100_000


def _renew(node_id: str, value: tuple[float, int, str], timeout: int) -> bool:
    """Overwrite a node's existing heartbeat entry; False when there is none.

    On Redis this is one round trip (``SET ... XX`` and the new deadline, see
    :mod:`discovery_app.deadlines`); other caches check and write.
    """
    key = selectors.heartbeat_key(node_id)
    if deadlines.available():
        return deadlines.renew(key, value, timeout, node_id, value[0] + value[1])
    if cache.get(key) is None:
        return False
    cache.set(key, value, timeout=timeout)
    return True


def node_heartbeat(
    *, node_id: str, now: float | None = None, allowed: Callable[[str], bool] = lambda service: True
) -> dict[str, Any]:
    """Renew a node's TTL.  Raises NodeNotRegistered (404) for a node the registry does not hold."""
    now = time.time() if now is None else now
    key = selectors.heartbeat_key(node_id)
    meta = _node_meta.get(node_id)
    if meta is not None and meta[2] > time.monotonic():
        ttl, service = meta[0], meta[1]
    else:
        entry = cache.get(key)
        if entry is None:
            _node_meta.pop(node_id, None)
            raise NodeNotRegistered()
        _, ttl, service = entry
        if len(_node_meta) >= MAX_NODE_META:
            _node_meta.clear()
        _node_meta[node_id] = (ttl, service, time.monotonic() + NODE_META_SECONDS)
    if not allowed(service):
        raise Denied(f"Not allowed to renew nodes of {service!r}.", "policy_denied")
    if not _renew(node_id, (now, ttl, service), ttl + selectors.HEARTBEAT_GRACE_SECONDS):
        _node_meta.pop(node_id, None)
        raise NodeNotRegistered()
    return {"id": node_id, "service": service, "ttl": ttl, "renewed": selectors.iso(now)}


def forget_node_meta() -> None:
    _node_meta.clear()


def node_heartbeats(
    *, node_ids: list[str], now: float | None = None, allowed: Callable[[str], bool] = lambda service: True
) -> dict[str, list[str]]:
    """Renew many nodes at once: {"renewed": [...], "not_registered": [...], "denied": [...]}."""
    now = time.time() if now is None else now
    keys = {selectors.heartbeat_key(node_id): node_id for node_id in dict.fromkeys(node_ids)}
    found = cache.get_many(list(keys))
    renewed, denied, updates = [], [], {}
    decisions: dict[str, bool] = {}
    longest = 0
    for key, (_, ttl, service) in found.items():
        if service not in decisions:
            decisions[service] = allowed(service)
        if not decisions[service]:
            denied.append(keys[key])
            continue
        updates[key] = (now, ttl, service)
        renewed.append(keys[key])
        longest = max(longest, ttl)
    timeout = longest + selectors.HEARTBEAT_GRACE_SECONDS
    if updates and deadlines.available():
        # Each entry only if it still exists (a node may have expired since the read).
        renewals = [(key, value, timeout, keys[key], value[0] + value[1]) for key, value in updates.items()]
        for (key, *_), done in zip(renewals, deadlines.renew_many(renewals), strict=True):
            if not done:
                renewed.remove(keys[key])
                found.pop(key)
    elif updates:
        cache.set_many(updates, timeout=timeout)
    missing = [node_id for key, node_id in keys.items() if key not in found]
    return {"renewed": renewed, "not_registered": missing, "denied": denied}


# --- The sweep ----------------------------------------------------------------------------------


@dataclass
class SweepReport:
    total: int = 0
    expired: list[str] = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    flushed: int = 0
    degraded: bool = False
    skipped: bool = False


def registry_sweep(*, now: float | None = None) -> SweepReport:
    """Expire nodes past their TTL, remove nodes critical past ``deregister_after``, flush heartbeats.

    The safety valve: when more than ``DISCOVERY_VALVE_SHARE`` of all nodes are overdue (plus
    those that expired within ``DISCOVERY_VALVE_WINDOW_SECONDS``), the fault is more likely the
    platform's than the fleet's: overdue nodes are kept passing and the registry is marked
    degraded until the share drops again.  The share is computed from the registry as it is at
    each sweep.  One sweep runs at a time (a lock in the shared cache).
    """
    now = time.time() if now is None else now
    if not cache.add(SWEEP_LOCK_KEY, now, timeout=30):
        return SweepReport(skipped=True)
    try:
        last_full = cache.get(FULL_SWEEP_KEY)
        if (
            deadlines.available()
            and last_full is not None
            and 0 <= now - last_full < settings.DISCOVERY_FULL_SWEEP_SECONDS
        ):
            return _sweep_due(now)
        report = _sweep_all(now)
        cache.set(FULL_SWEEP_KEY, now, timeout=None)
        return report
    finally:
        cache.delete(SWEEP_LOCK_KEY)


def _sweep_all(now: float) -> SweepReport:
    """The full pass: every node and heartbeat entry; flushes heartbeat times, rebuilds the index."""
    rows = list(
        Node.objects.values_list(
            "id", "status", "ttl", "deregister_after", "last_heartbeat", "critical_since"
        )
    )
    report = SweepReport(total=len(rows))
    beats = selectors.last_heartbeats([row[0] for row in rows if row[1] == Node.Status.PASSING])
    overdue: list[str] = []
    flush: dict[str, float] = {}
    indexed: dict[str, float] = {}
    for node_id, status, ttl, _, last_heartbeat, _ in rows:
        if status != Node.Status.PASSING:
            continue
        stored = last_heartbeat.timestamp()
        beat = beats.get(node_id, stored)
        # Every passing node, overdue ones too: the sweeps between full passes must see the
        # nodes the valve holds, and those a batch left for the next second.
        indexed[node_id] = max(beat, stored) + ttl
        if now - max(beat, stored) > ttl:
            overdue.append(node_id)
        elif beat - stored >= settings.DISCOVERY_FLUSH_SECONDS:
            flush[node_id] = beat
    critical = [row for row in rows if row[1] != Node.Status.PASSING]
    _expire_and_remove(report, overdue, [(row[0], row[3], row[5]) for row in critical], now)
    deadlines.index(indexed)
    if flush:
        report.flushed = _flush_heartbeats(flush)
    return report


def _sweep_due(now: float) -> SweepReport:
    """The pass between full ones: only the nodes the deadline index says may be overdue, and
    the critical ones (few, unless the fleet is in trouble)."""
    report = SweepReport(total=Node.objects.count())
    candidates = deadlines.due(now)
    overdue: list[str] = []
    if candidates:
        rows = Node.objects.filter(id__in=candidates, status=Node.Status.PASSING).values_list(
            "id", "ttl", "last_heartbeat"
        )
        beats = selectors.last_heartbeats(candidates)
        renewed: dict[str, float] = {}
        for node_id, ttl, last_heartbeat in rows:
            last = max(beats.get(node_id, 0.0), last_heartbeat.timestamp())
            if now - last > ttl:
                overdue.append(node_id)
            else:  # renewed since it was indexed (or indexed by an older full pass)
                renewed[node_id] = last + ttl
        deadlines.drop(set(candidates) - set(overdue) - set(renewed))  # no longer passing
        deadlines.index(renewed)
    critical = Node.objects.exclude(status=Node.Status.PASSING).values_list(
        "id", "deregister_after", "critical_since"
    )
    _expire_and_remove(report, overdue, list(critical), now)
    return report


def _expire_and_remove(
    report: SweepReport, overdue: list[str], critical: list[tuple[str, int, datetime | None]], now: float
) -> None:
    """Expire the overdue nodes (unless the safety valve holds them), remove the long-dead ones."""
    dead: list[str] = []
    recently_expired = 0
    for node_id, deregister_after, critical_since in critical:
        since = critical_since.timestamp() if critical_since else now
        if now - since >= deregister_after:
            dead.append(node_id)
        elif now - since <= settings.DISCOVERY_VALVE_WINDOW_SECONDS:
            recently_expired += 1
    if overdue:
        overdue = _hold_or_expire(report, overdue, recently_expired, now)
    else:
        _set_degraded(None, now)
    batch = settings.DISCOVERY_SWEEP_BATCH  # a short sweep: the rest waits for the next one
    if overdue:
        report.expired = _expire(overdue[:batch], now)
    if dead:
        report.deregistered = _remove_dead(dead[:batch], now)


def _flush_heartbeats(beats: dict[str, float]) -> int:
    """Write cached heartbeat times to the database in bulk (at most DISCOVERY_FLUSH_BATCH a sweep)."""
    items = sorted(beats.items(), key=lambda item: item[1])[: settings.DISCOVERY_FLUSH_BATCH]
    if connection.vendor == "postgresql":
        # One UPDATE ... FROM (VALUES ...) per chunk: far cheaper than bulk_update's CASE WHEN.
        table = Node._meta.db_table
        with connection.cursor() as cursor:
            for start in range(0, len(items), 1000):
                chunk = items[start : start + 1000]
                values = ", ".join(["(%s, %s::timestamptz)"] * len(chunk))
                params = [value for node_id, beat in chunk for value in (node_id, to_datetime(beat))]
                cursor.execute(
                    f'UPDATE "{table}" AS n SET "last_heartbeat" = v.ts '  # noqa: S608 (no user input)
                    f"FROM (VALUES {values}) AS v(id, ts) WHERE n.id = v.id AND n.last_heartbeat < v.ts",
                    params,
                )
    else:
        Node.objects.bulk_update(
            [Node(id=node_id, last_heartbeat=to_datetime(beat)) for node_id, beat in items],
            ["last_heartbeat"],
            batch_size=500,
        )
    return len(items)


def _hold_or_expire(report: SweepReport, overdue: list[str], recently_expired: int, now: float) -> list[str]:
    """Apply the safety valve; returns the nodes to expire now."""
    total = report.total
    share = (len(overdue) + recently_expired) / total if total else 0.0
    state = selectors.degraded_state()
    tripped = total >= settings.DISCOVERY_VALVE_MIN_NODES and share > settings.DISCOVERY_VALVE_SHARE
    max_hold = settings.DISCOVERY_VALVE_MAX_HOLD_SECONDS
    if tripped and state is not None and max_hold and now - state["since"] >= max_hold:
        tripped = False  # held long enough: these nodes are really gone
    if not tripped:
        _set_degraded(None, now)
        return overdue
    report.degraded = True
    report.held = overdue
    _set_degraded({"held": len(overdue), "total": total, "share": round(share, 4)}, now)
    return []


def _set_degraded(info: dict[str, Any] | None, now: float) -> None:
    state = selectors.degraded_state()
    if info is None:
        if state is not None:
            cache.delete(selectors.DEGRADED_KEY)
            _publish_event("discovery.registry.recovered", "registry", {"since": state["since_iso"]})
            _group_send([ALL_GROUP], {"type": "discovery.registry", "degraded": False, "state": None})
        return
    since = state["since"] if state is not None else now
    new_state = {**info, "since": since, "since_iso": selectors.iso(since), "checked": selectors.iso(now)}
    cache.set(selectors.DEGRADED_KEY, new_state, timeout=None)
    if state is None:
        log.warning("discovery: registry degraded, expiry suspended", extra=info)
        _publish_event("discovery.registry.degraded", "registry", new_state)
        _group_send([ALL_GROUP], {"type": "discovery.registry", "degraded": True, "state": new_state})


@transaction.atomic
def _expire(node_ids: list[str], now: float) -> list[str]:
    nodes = list(
        Node.objects.select_for_update()
        .select_related("service")
        .filter(id__in=node_ids, status=Node.Status.PASSING)
        .order_by("id")
    )
    # A heartbeat or a registration may have arrived since the sweep looked: check again.
    beats = selectors.last_heartbeats([node.id for node in nodes])
    nodes = [
        node
        for node in nodes
        if now - max(beats.get(node.id, 0.0), node.last_heartbeat.timestamp()) > node.ttl
    ]
    if not nodes:
        return []
    stamp = to_datetime(now)
    Node.objects.filter(id__in=[node.id for node in nodes]).update(
        status=Node.Status.CRITICAL, critical_since=stamp
    )
    changes = []
    for node in nodes:
        node.status, node.critical_since = Node.Status.CRITICAL, stamp
        changes.append(
            _Change(
                "update",
                node.service.name,
                node.service.version,
                _snapshot(node, node.service.version),
                "expired",
            )
        )
    _record(changes, now)
    expired = [node.id for node in nodes]
    transaction.on_commit(partial(_drop_heartbeats, expired))
    _events_after_commit(
        "discovery.node.expired",
        [(node.id, _event_data(node, node.service, ttl=node.ttl)) for node in nodes],
    )
    return expired


@transaction.atomic
def _remove_dead(node_ids: list[str], now: float) -> list[str]:
    nodes = list(
        Node.objects.select_for_update()
        .select_related("service")
        .filter(id__in=node_ids, status=Node.Status.CRITICAL)
        .order_by("id")
    )
    nodes = [
        node
        for node in nodes
        if node.critical_since is None or now - node.critical_since.timestamp() >= node.deregister_after
    ]
    if not nodes:
        return []
    removed = [node.id for node in nodes]
    Node.objects.filter(id__in=removed).delete()
    _drop_empty_services({node.service_id for node in nodes})
    _record(
        [
            _Change(
                "delete",
                node.service.name,
                node.service.version,
                _snapshot(node, node.service.version),
                "critical_too_long",
            )
            for node in nodes
        ],
        now,
    )
    transaction.on_commit(partial(_drop_heartbeats, removed))
    _events_after_commit(
        "discovery.node.deregistered",
        [(node.id, _event_data(node, node.service, reason="critical_too_long")) for node in nodes],
    )
    return removed


def results_purge(*, now: float | None = None) -> int:
    """Delete watch history older than DISCOVERY_HISTORY_SECONDS."""
    now = time.time() if now is None else now
    cutoff = to_datetime(now - settings.DISCOVERY_HISTORY_SECONDS)
    return Result.objects.filter(timestamp__lt=cutoff).delete()[0]
