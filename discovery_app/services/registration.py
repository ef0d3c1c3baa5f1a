"""Registering and deregistering nodes."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework.exceptions import NotFound

from discovery_app.models import Node, Service
from discovery_app.services.common import (
    MAX_INTERVAL,
    _Change,
    _drop_empty_services,
    _drop_heartbeats,
    _event_data,
    _events_after_commit,
    _node_meta,
    _record,
    _set_heartbeat,
    _snapshot,
    lock_services,
    to_datetime,
    validate_registration,
)
from platformsite.api.errors import Conflict

log = logging.getLogger(__name__)


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
    lock_services([service])
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
    # Now, under the service's lock (lock_services), not after commit: a deregistration racing
    # this call drops the entry after it is set, never before (the hooks of two transactions
    # ran in either order: a deleted node's heartbeats went on answering 200).
    _set_heartbeat(node_id, service, ttl, now)
    _events_after_commit("discovery.node.registered", [(node_id, _event_data(node, target, created=created))])
    return node, created


@transaction.atomic
def node_deregister(*, node_id: str, reason: str = "deregistered", now: float | None = None) -> None:
    """Remove a node from the registry (404 if it is not there)."""
    now = time.time() if now is None else now
    name = Node.objects.filter(id=node_id).values_list("service__name", flat=True).first()
    if name is not None:
        lock_services([name])  # a node never moves to another name: registering it so is a 409
    node = Node.objects.select_for_update().select_related("service").filter(id=node_id).first()
    if node is None:
        raise NotFound(f"No node {node_id!r} is registered.")
    if node.service.name != name:  # deleted and registered again under another name meanwhile
        raise Conflict(f"Node {node_id!r} is being registered concurrently; retry.", "registration_conflict")
    service = node.service
    node.delete()
    _drop_empty_services([service.pk])
    node.id = node_id  # delete() keeps it for a CharField key, but be explicit
    _record([_Change("delete", service.name, service.version, _snapshot(node, service.version), reason)], now)
    _drop_heartbeats([node_id])  # under the service's lock, as node_register sets it
    _events_after_commit(
        "discovery.node.deregistered", [(node_id, _event_data(node, service, reason=reason))]
    )
