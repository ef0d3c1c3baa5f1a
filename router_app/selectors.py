"""Reads of the router service: routes (cached), decisions, labels and rules.

A service's routes document is built from discovery's cached document (the passing nodes), the
last evaluation (weights, ejections and their reasons), labels, rules and rate limits.  It is
cached under the service's discovery index and routes revision, so any change to either is a
new key: a warm routes read is two cache reads and no query.  Per request only the caller's rate
limit and the rules its labels follow are picked out of it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum

from discovery_app import selectors as discovery
from platform_client import router_rules
from platformsite.cache import CACHE_DOWN
from router_app.models import Label, NodeState, OutlierEvent, Policy, RateLimit, Rule, StatsWindow
from router_app.outlier import Params, as_served
from router_app.services.common import current_revision, revision_key, stored_revision

ROUTES_PREFIX = "router:routes:"
EVENTS_SHOWN = 50


def clock() -> float:
    """Now, in seconds since the epoch (what routes answers are stamped with)."""
    return time.time()


def iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def label_data(label: Label) -> dict[str, Any]:
    return {
        "id": label.pk,
        "service": label.service,
        "version": label.version,
        "key": label.key,
        "value": label.value,
        "weight": label.weight,
        "priority": label.priority,
        "updated": iso(label.updated),
    }


rule_data = label_data


def policy_data(policy: Policy) -> dict[str, Any]:
    return {
        "service": policy.service,
        "enforce": policy.enforce,
        "outlier_detection": {name: getattr(policy, name) for name in Params.names()},
        "evaluated": iso(policy.evaluated),
        "revision": policy.revision,
    }


def policy_of(service: str) -> Policy:
    """The stored policy, or an unsaved one with the defaults (reads create nothing)."""
    return Policy.objects.filter(service=service).first() or Policy(service=service)


def state_data(state: NodeState, enforce: bool) -> dict[str, Any]:
    """A node's stored state, served (weight, reasons) under the policy's ``enforce`` as it is now."""
    weight, reasons = as_served(state.computed_weight, state.reasons, enforce)
    return {
        "node": state.node,
        "version": state.version,
        "weight": weight,
        "computed_weight": state.computed_weight,
        "state": "ejected" if state.ejected else "active",
        "ejected_until": iso(state.ejected_until),
        "ejection_type": state.ejection_type or None,
        "ejections": state.ejections,
        "requests": state.requests,
        "successes": state.successes,
        "timeouts": state.timeouts,
        "dropped": state.dropped,
        "success_rate": state.success_rate,
        "latency_mean_ms": state.latency_mean_ms,
        "latency_p99_ms": state.latency_p99_ms,
        "factors": state.factors,
        "reasons": reasons,
        "updated": iso(state.updated),
    }


def event_data(event: OutlierEvent) -> dict[str, Any]:
    fields = {name: getattr(event, name) for name in OutlierEvent.DECISION_FIELDS}
    return {"id": event.pk, **fields, "timestamp": iso(event.timestamp)}


def rate_limited(service: str, now: float | None = None) -> list[dict[str, Any]]:
    """Calls each caller's rate limit refused in the lookback, as the callers reported them."""
    rows = (
        StatsWindow.objects.recent(time.time() if now is None else now)
        .filter(service=service, node="", dropped__gt=0)
        .values("caller")
        .annotate(dropped=Sum("dropped"))
        .order_by("caller")
    )
    return [{"caller": row["caller"], "dropped": row["dropped"]} for row in rows]


def decisions(service: str) -> dict[str, Any]:
    """The service's current state (per node), its last decisions and the calls rate limits
    refused (four queries)."""
    policy = policy_of(service)
    states = NodeState.objects.filter(service=service).order_by("node")
    events = OutlierEvent.objects.filter(service=service).order_by("-id")[:EVENTS_SHOWN]
    return {
        **policy_data(policy),
        "nodes": [state_data(state, policy.enforce) for state in states],
        "events": [event_data(event) for event in events],
        "rate_limited": rate_limited(service),
    }


def _build(service: str, document: dict[str, Any], revision: int) -> dict[str, Any]:
    policy = policy_of(service)
    states = {state.node: state for state in NodeState.objects.filter(service=service)}
    labels = [label_data(label) for label in Label.objects.filter(service=service)]
    rules = [rule_data(rule) for rule in Rule.objects.filter(service=service).order_by("-priority", "id")]
    limits = {
        limit.caller: {"rate": limit.rate, "burst": limit.burst}
        for limit in RateLimit.objects.filter(service=service)
    }
    passing = {
        version["version"]: [node for node in version["nodes"] if node["status"] == "passing"]
        for version in document["versions"]
    }
    carried = router_rules.label_nodes(
        labels, {version: [node["id"] for node in nodes] for version, nodes in passing.items()}
    )
    versions = []
    for version, nodes in passing.items():
        listed = []
        for node in nodes:
            state = states.get(node["id"])
            ejected = bool(state and state.ejected and policy.enforce)
            weight, reasons = (
                as_served(state.computed_weight, state.reasons, policy.enforce)
                if state
                else (100, ["not evaluated yet: full weight"])
            )
            listed.append(
                {
                    "id": node["id"],
                    "address": node["address"],
                    "port": node["port"],
                    "metadata": node["metadata"],
                    "labels": carried.get(node["id"], {}),
                    "weight": 0 if ejected else weight,
                    "state": "ejected" if ejected else "active",
                    "ejected_until": iso(state.ejected_until) if ejected else None,
                    "reasons": reasons,
                }
            )
        versions.append({"version": version, "nodes": listed})
    return {
        "service": service,
        "index": document["index"],
        "revision": revision,
        "enforce": policy.enforce,
        "versions": versions,
        "labels": labels,
        "rules": rules,
        "rate_limits": limits,
        "outlier_detection": {name: getattr(policy, name) for name in Params.names()},
    }


def _routes_key(service: str, index: int, revision: int) -> str:
    return f"{ROUTES_PREFIX}{len(service)}:{service}:{index}:{revision}"


def service_known(service: str) -> bool:
    """Registered in discovery, or known to the router already (a policy, labels, rules)."""
    return discovery.service_entry(service).exists or Policy.objects.filter(service=service).exists()


def routes_document_warm(service: str) -> dict[str, Any] | None:
    """:func:`routes_document` when it needs no query: None if anything must be read or built."""
    entry = discovery.service_entry_warm(service)
    if entry is None or not entry.exists:
        return None
    revision = cache.get(revision_key(service))
    return None if revision is None else cache.get(_routes_key(service, entry.index, revision))


def routes_document(service: str) -> dict[str, Any] | None:
    """The service's routes as cached (None when discovery has no such service)."""
    entry = discovery.service_entry(service)
    if not entry.exists:
        return None
    try:
        revision = current_revision(service)
        key = _routes_key(service, entry.index, revision)
        document = cache.get(key)
    except CACHE_DOWN:  # Redis down: built from the database, keeping no copy
        return _build(service, entry.document(), stored_revision(service))
    if document is None:
        document = _build(service, entry.document(), revision)
        cache.set(key, document, timeout=max(60, settings.ROUTER_ROUTES_TTL_SECONDS * 10))
    return document


def routes_for(
    document: dict[str, Any], *, caller: str | None, labels: dict[str, str], now: float | None = None
) -> dict[str, Any]:
    """The routes a caller with these request labels gets: the document, the rules it follows,
    each version's share of its requests, its rate limit and when the answer expires."""
    now = clock() if now is None else now
    applied = router_rules.matching_rules(document["rules"], labels)
    weights = {v["version"]: sum(n["weight"] for n in v["nodes"]) for v in document["versions"]}
    split = router_rules.version_split(applied, {v for v, w in weights.items() if w > 0})
    # The default route is narrowed by the request's labels, as the SDK's selector does
    # (platform_client.router.Table.pool): only the nodes carrying them take its share.
    candidates = [(v["version"], n) for v in document["versions"] for n in v["nodes"]]
    if labels:
        candidates = list(
            router_rules.narrow(
                candidates, labels, lambda c: {**c[1].get("metadata", {}), **c[1].get("labels", {})}
            )
        )
    default_weights = {version: 0 for version in weights}
    for version, node in candidates:
        default_weights[version] += node["weight"]
    total = sum(default_weights.values())
    shares = {version: 0.0 for version in weights}
    previous = 0.0
    for version, bound in split:
        part = bound - previous
        previous = bound
        if version is not None:
            shares[version] += part
        elif total:
            for name, weight in default_weights.items():
                shares[name] += part * weight / total
    limits = document["rate_limits"]
    limit = limits.get(caller) if caller else None
    ttl = settings.ROUTER_ROUTES_TTL_SECONDS
    return {
        **document,
        "caller": caller,
        "request_labels": labels,
        "versions": [{**v, "share": round(shares[v["version"]], 3)} for v in document["versions"]],
        "rules_applied": list(applied),
        "rate_limit": limit if limit is not None else limits.get("*"),
        "generated": iso(now),
        "expires": iso(now + ttl),
        "ttl": ttl,
    }


def services_overview() -> list[dict[str, Any]]:
    """Every service the router holds anything for: policy, node counts, ejections (three queries)."""
    names: dict[str, dict[str, Any]] = {}
    for policy in Policy.objects.all():
        names[policy.service] = {**policy_data(policy), "nodes": 0, "ejected": 0}
    for state in NodeState.objects.only("service", "ejected"):
        item = names.setdefault(
            state.service, {**policy_data(Policy(service=state.service)), "nodes": 0, "ejected": 0}
        )
        item["nodes"] += 1
        item["ejected"] += state.ejected
    return [names[name] for name in sorted(names)]
