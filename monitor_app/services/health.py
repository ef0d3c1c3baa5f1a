"""Service health: a service is healthy while at least a set share of its nodes pass.

A node passes when none of its critical checks is critical.  A node that reported itself
STOPPED has left on purpose: it counts neither for nor against the share (discovery's
``?passing`` still leaves it out).  The share is ``MONITOR_HEALTHY_SHARE`` unless the service
sets its own ``min_share``; a service with no counted node is ``unknown``.
Recomputed in the transaction of every check flip (and of a node status change); a change of
the service's state is a flip of its own (``check`` empty) and may raise
``monitor.service.degraded`` or ``monitor.service.recovered``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from monitor_app.models import Check, Flip, NodeStatus, ServiceHealth, State
from platformsite.cache import CACHE_DOWN

log = logging.getLogger(__name__)


def node_states(name: str) -> tuple[set[str], set[str], set[str]]:
    """(the nodes counted, those of them failing, the nodes stopped): three queries."""
    stopped = set(
        NodeStatus.objects.filter(service=name, status=NodeStatus.Status.STOPPED).values_list(
            "node", flat=True
        )
    )
    nodes = set(Check.objects.filter(service=name).exclude(node="").values_list("node", flat=True).distinct())
    failing = set(
        Check.objects.filter(service=name, critical=True, status=State.CRITICAL)
        .exclude(node="")
        .values_list("node", flat=True)
        .distinct()
    )
    return nodes - stopped, failing - stopped, stopped


FAILING_PREFIX = "monitor:failing:"
#: The failing nodes of every service are stored again this often by the state loop (a shared
#: cache that lost them, restarted or evicted, is whole again by then).
FAILING_REFRESH_SECONDS = 30


def failing_key(name: str) -> str:
    return FAILING_PREFIX + name


def failing_publish(name: str, failing: set[str]) -> None:
    """Keep a service's failing nodes in the shared cache (discovery's ``?passing=true``), after
    commit.  A shared cache that cannot be reached is logged: the change is stored, and the state
    loop stores every service's set again within ``FAILING_REFRESH_SECONDS``."""
    try:
        cache.set(failing_key(name), sorted(failing), timeout=None)
    except CACHE_DOWN as exc:
        log.warning("monitor: the failing nodes of %s could not be stored in the cache: %s", name, exc)


def failing_refresh_all() -> int:
    """Store every service's failing nodes again (two queries); the number of services."""
    failing: dict[str, set[str]] = {}
    for service, node in (
        Check.objects.filter(critical=True, status=State.CRITICAL)
        .exclude(node="")
        .values_list("service", "node")
    ):
        failing.setdefault(service, set()).add(node)
    for service, node in NodeStatus.objects.filter(status=NodeStatus.Status.STOPPED).values_list(
        "service", "node"
    ):
        failing.setdefault(service, set()).add(node)
    names = set(ServiceHealth.objects.values_list("name", flat=True)) | set(failing)
    cache.set_many({failing_key(name): sorted(failing.get(name, ())) for name in names}, timeout=None)
    return len(names)


def judge(nodes: int, passing: int, min_share: float | None) -> str:
    if not nodes:
        return ServiceHealth.Status.UNKNOWN
    share = settings.MONITOR_HEALTHY_SHARE if min_share is None else min_share
    return ServiceHealth.Status.HEALTHY if passing / nodes >= share else ServiceHealth.Status.DEGRADED


def service_refresh(*, name: str, now: float) -> list[Any]:
    """Recompute a service's health (inside the caller's transaction); the alerts raised."""
    from monitor_app.services import alerts

    nodes, failing, stopped = node_states(name)
    total, passing = len(nodes), len(nodes - failing)
    transaction.on_commit(lambda: failing_publish(name, failing | stopped))
    with transaction.atomic():
        health, _ = ServiceHealth.objects.select_for_update().get_or_create(name=name)
        status = judge(total, passing, health.min_share)
        old = health.status
        if (health.status, health.nodes, health.passing) == (status, total, passing):
            return []
        at = datetime.fromtimestamp(now, UTC)
        fields: dict[str, Any] = {"nodes": total, "passing": passing, "status": status}
        if status != old:
            fields["changed"] = at
        ServiceHealth.objects.filter(pk=health.pk).update(**fields, version=F("version") + 1)
        for key, value in fields.items():
            setattr(health, key, value)
        if status == old:
            return []
        flip = Flip.objects.create(
            service=name,
            old=old,
            new=status,
            reason=f"{passing} of {total} nodes passing",
            at=at,
        )
        raised = alerts.on_service_flip(health, flip, now=now)
        ids = [alert.pk for alert in raised]
        live = alerts.flip_data(flip)

        def done() -> None:
            if ids:
                alerts.alerts_publish(ids=ids)
            alerts.push({"type": "flip", "flip": live})

        transaction.on_commit(done)
        return raised
