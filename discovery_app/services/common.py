"""What the discovery writes share: names and validation, results, watch pushes, events, heartbeat entries."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from rest_framework.exceptions import NotFound

from discovery_app import deadlines, selectors
from discovery_app.models import Node, Result, Service, ServiceIndex
from event_app.services import event_publish, event_publish_many
from platformsite import live
from platformsite.api import validators
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

log = logging.getLogger(__name__)

SOURCE = "/platform/discovery"
SWEEP_LOCK_KEY = "discovery:sweep-lock"
FULL_SWEEP_KEY = "discovery:full-sweep-at"
ALL_GROUP = "discovery.all"
# \Z, not $: "$" also matches before a trailing newline ("orders\n" would pass).
SERVICE_NAME_PATTERN = validators.SERVICE.pattern
NODE_ID_PATTERN = validators.NODE.pattern
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
    errors: dict[str, list[str]] = {
        name: ["This field is required."]
        for name, value in (("service", service), ("address", address), ("port", port))
        if value is None
    }
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        errors["id"] = ["Use 1-200 letters, digits, '.', '_', ':' or '-'."]
    if service is not None and (not isinstance(service, str) or not SERVICE_NAME.match(service)):
        errors["service"] = ["Use 1-200 letters, digits, '.', '_' or '-'."]
    if not isinstance(version, str) or not VERSION.match(version):
        errors["version"] = ["Use 1-100 letters, digits, '.', '_', '+' or '-'."]
    if address is not None and (not isinstance(address, str) or not is_valid_address(address)):
        errors["address"] = ["Must be an IP address or a host name."]
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
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


def lock_services(names: Iterable[str]) -> None:
    """Take the registry's lock on each service name, in name order, before any node or service
    row: a registration, a deregistration and the sweep touching one name run one after the
    other, so a service emptied by one is never deleted under another's new node, and no two of
    them wait on each other's rows (a lock on the name's ``ServiceIndex`` row, which is never
    deleted)."""
    for name in sorted(set(names)):
        ServiceIndex.objects.get_or_create(name=name)
        ServiceIndex.objects.select_for_update().filter(name=name).values_list("pk", flat=True).get()


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
    for group in groups:
        live.notify(group, message)


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
        _group_send([ALL_GROUP], {**message, "copy": "all"})


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


# --- Node metadata memo (heartbeats; registration and the sweep keep it current) --------------


#: Process-local memo of node id -> (ttl, service, valid until): lets a heartbeat renew its entry
#: in one write (no read first).  Whether the node is still registered is always decided by the
#: shared cache: the write only happens if the entry exists.
_node_meta: dict[str, tuple[int, str, float]] = {}
NODE_META_SECONDS = 60.0
MAX_NODE_META = 100_000
