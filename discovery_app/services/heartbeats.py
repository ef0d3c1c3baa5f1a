"""Heartbeats: a node's TTL renewed in the shared cache, never in the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache

from discovery_app import deadlines, selectors
from discovery_app.services.common import MAX_NODE_META, NODE_META_SECONDS, NodeNotRegistered, _node_meta
from platformsite import localstate
from platformsite.api.errors import Denied

log = logging.getLogger(__name__)

# --- Heartbeats (hot path: the shared cache only) ------------------------------------------------


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


localstate.register_cache("discovery.node_meta", size=lambda: len(_node_meta), reset=_node_meta.clear)


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
