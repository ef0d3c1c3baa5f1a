"""Evaluations: a service's recent windows merged across callers, then outlier detection and weights.

The beat task (:func:`evaluate_due`) evaluates each service with recent windows, or with nodes
still ejected, once its policy's ``interval`` has passed.  :func:`service_evaluate` reads the
service's passing nodes from discovery, merges the windows received in the last
``ROUTER_LOOKBACK_SECONDS`` (``StatsWindow.objects.recent``) per node (all callers, endpoints and
windows), runs
:func:`router_app.outlier.evaluate`, stores every node's state and the decisions as
``OutlierEvent`` rows, and bumps the routes revision when a served weight or ejection changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction

from discovery_app import selectors as discovery
from platform_client.router_stats import Histogram
from router_app import outlier
from router_app.models import NodeState, OutlierEvent, Policy, StatsWindow
from router_app.services.common import policy_for, routes_changed


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def passing_nodes(service: str) -> list[tuple[str, str]]:
    """(node id, version) of the service's passing nodes, from discovery's cached document."""
    entry = discovery.service_entry(service)
    if not entry.exists:
        return []
    return [
        (node["id"], version["version"])
        for version in entry.document()["versions"]
        for node in version["nodes"]
        if node["status"] == "passing"
    ]


def merged_inputs(service: str, nodes: list[tuple[str, str]], now: float) -> list[outlier.NodeInput]:
    """Each node's calls in the lookback, summed over callers, endpoints and windows."""
    inputs = {node: outlier.NodeInput(node, version) for node, version in nodes}
    rows = (
        StatsWindow.objects.recent(now)
        .filter(service=service, node__in=list(inputs))
        .values_list("node", "requests", "successes", "timeouts", "dropped", "consecutive_5xx", "latency")
    )
    for node, requests, successes, timeouts, dropped, streak, latency in rows.iterator(chunk_size=2000):
        merged = inputs[node]
        merged.requests += requests
        merged.successes += successes
        merged.timeouts += timeouts
        merged.dropped += dropped
        merged.consecutive_5xx = max(merged.consecutive_5xx, streak)
        merged.latency.merge(Histogram.from_wire(latency))
    return list(inputs.values())


@dataclass
class Evaluation:
    service: str
    nodes: int
    events: int
    changed: bool


@transaction.atomic
def service_evaluate(*, service: str, now: float) -> Evaluation:
    """Evaluate one service now; see the module's docstring."""
    policy = policy_for(service)
    Policy.objects.select_for_update().filter(pk=policy.pk).first()  # one evaluation at a time
    nodes = passing_nodes(service)
    inputs = merged_inputs(service, nodes, now)
    previous = {state.node: state for state in NodeState.objects.filter(service=service)}
    memory = {
        name: outlier.Memory(
            state.ejected,
            _ts(state.ejected_until),
            state.ejection_type,
            state.ejections,
            _ts(state.last_action),
        )
        for name, state in previous.items()
    }
    results, events = outlier.evaluate(
        inputs,
        memory,
        outlier.Params.of(policy),
        now,
        enforce=policy.enforce,
        penalty_ms=settings.ROUTER_FAILURE_PENALTY_MS,
    )
    stamp = _dt(now)
    changed = False
    rows = []
    for result in results:
        node, state = result.input, result.memory
        before = previous.get(node.node)
        if before is None or (before.weight, before.ejected and policy.enforce) != (
            result.weight,
            state.ejected and policy.enforce,
        ):
            changed = True
        rows.append(
            NodeState(
                service=service,
                node=node.node,
                version=node.version,
                requests=node.requests,
                successes=node.successes,
                timeouts=node.timeouts,
                dropped=node.dropped,
                success_rate=None if node.success_rate is None else round(node.success_rate * 100, 3),
                latency_mean_ms=node.latency.mean(),
                latency_p99_ms=node.latency.quantile(0.99),
                weight=result.weight,
                computed_weight=result.computed_weight,
                factors=result.factors,
                ejected=state.ejected,
                ejected_until=_dt(state.ejected_until),
                ejection_type=state.ejection_type,
                ejections=state.ejections,
                last_action=_dt(state.last_action),
                reasons=result.reasons,
                updated=stamp,
            )
        )
    gone = set(previous) - {r.input.node for r in results}
    if gone:
        changed = True
        NodeState.objects.filter(service=service, node__in=gone).delete()
    NodeState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["service", "node"],
        update_fields=[
            f.name for f in NodeState._meta.concrete_fields if f.name not in ("id", "service", "node")
        ],
    )
    OutlierEvent.objects.bulk_create(
        OutlierEvent(
            service=service,
            timestamp=stamp,
            **{name: getattr(event, name) for name in OutlierEvent.DECISION_FIELDS},
        )
        for event in events
    )
    Policy.objects.filter(pk=policy.pk).update(evaluated=stamp)
    if changed or events:
        routes_changed(service, "evaluation")
    return Evaluation(service, len(results), len(events), changed)


def due_services(now: float) -> list[str]:
    """Services with windows in the lookback or ejected nodes, whose interval has passed."""
    names = set(StatsWindow.objects.recent(now).values_list("service", flat=True).distinct())
    names |= set(NodeState.objects.filter(ejected=True).values_list("service", flat=True).distinct())
    policies = {
        p.service: p
        for p in Policy.objects.filter(service__in=names).only("service", "interval", "evaluated")
    }
    due = []
    for name in sorted(names):
        policy = policies.get(name)
        if policy is None or policy.evaluated is None:
            due.append(name)
            continue
        next_due = policy.evaluated + timedelta(seconds=max(1, policy.interval)) - timedelta(milliseconds=500)
        if next_due <= _dt(now):
            due.append(name)
    return due


def evaluate_due(*, now: float) -> list[Evaluation]:
    return [service_evaluate(service=name, now=now) for name in due_services(now)]


def events_purge(*, now: float) -> int:
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=settings.ROUTER_EVENT_DAYS)
    deleted, _ = OutlierEvent.objects.filter(timestamp__lt=cutoff).delete()
    return deleted
