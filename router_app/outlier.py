"""Routing decisions for one service: Envoy's outlier detection, then weights (pure functions).

:func:`evaluate` takes each node's merged statistics for the last interval and what the previous
evaluation left (its ejection state), and returns every node's new state and the decisions
taken, as Envoy's ``OutlierDetectionEvent`` (type, action, num_ejections, enforced, the node's
rate, the service's average and the threshold).  The parameters keep Envoy's names and defaults:

- ``consecutive_5xx`` (5): a node whose callers saw that many failures in a row is ejected;
- ``success_rate_*``: with at least ``success_rate_minimum_hosts`` (5) nodes having
  ``success_rate_request_volume`` (100) requests, a node whose success rate is below
  ``mean - success_rate_stdev_factor / 1000 * stdev`` (1.9) is ejected;
- ``failure_percentage_*``: with ``failure_percentage_minimum_hosts`` (5) nodes having
  ``failure_percentage_request_volume`` (50) requests, a node failing at least
  ``failure_percentage_threshold`` percent (85) is ejected (``enforcing_failure_percentage`` 0:
  off unless set, as in Envoy);
- an ejection lasts ``base_ejection_time`` (30 s) times the node's ejections, at most
  ``max_ejection_time`` (300 s); the multiplier drops by one per evaluation the node is healthy;
- at most ``max_ejection_percent`` (10) of the nodes are ejected at once, but always at least one;
- ``enforcing_*`` (0-100): the percentage of detections acted on; the others are recorded with
  ``enforced`` false.

Weights (0-100) combine success rate and latency, charging each failure ``penalty_ms`` (Linkerd's
lesson: a node that fails fast must not look fast): the effective latency is
``mean + (1 - s) / s * penalty`` and the weight ``100 * reference / effective`` (1 to 100), where
the reference is the median mean latency of the service's nodes, or the lowest effective latency
when that is higher: the best node weighs 100, as one with no calls yet does.  A node whose calls
carry no latencies is taken at that median (at ``penalty`` when no node has latencies), so its
failures cost it weight all the same.  An ejected node weighs 0.

No Django here: the simulation in ``tests/bench`` runs the same code.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from platform_client.router_stats import Histogram


@dataclass(frozen=True)
class Params:
    """Envoy's outlier-detection parameters (the same names), with Envoy's defaults."""

    consecutive_5xx: int = 5
    interval: int = 10
    base_ejection_time: int = 30
    max_ejection_time: int = 300
    max_ejection_percent: int = 10
    enforcing_consecutive_5xx: int = 100
    success_rate_minimum_hosts: int = 5
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: int = 1900
    enforcing_success_rate: int = 100
    failure_percentage_threshold: int = 85
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50
    enforcing_failure_percentage: int = 0

    @classmethod
    def names(cls) -> list[str]:
        return [item.name for item in fields(cls)]

    @classmethod
    def of(cls, source: Any) -> Params:
        """The parameters held by an object with these attributes (a ``Policy`` row)."""
        return cls(**{name: getattr(source, name) for name in cls.names()})


@dataclass
class NodeInput:
    """A node's calls in the last interval, merged across callers."""

    node: str
    version: str
    requests: int = 0
    successes: int = 0
    timeouts: int = 0
    dropped: int = 0
    consecutive_5xx: int = 0
    latency: Histogram = field(default_factory=Histogram)

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None


@dataclass
class Memory:
    """What an evaluation keeps of a node for the next one."""

    ejected: bool = False
    ejected_until: float | None = None
    ejection_type: str = ""
    ejections: int = 0
    last_action: float | None = None


@dataclass
class NodeResult:
    input: NodeInput
    memory: Memory
    computed_weight: int
    weight: int
    factors: dict[str, Any]
    reasons: list[str]


@dataclass
class Event:
    node: str
    version: str
    type: str
    action: str
    num_ejections: int
    enforced: bool
    host_rate: float | None = None
    service_average: float | None = None
    threshold: float | None = None
    secs_since_last_action: int | None = None
    factors: dict[str, Any] = field(default_factory=dict)


def default_draw(node: str, kind: str, now: float) -> float:
    """A number in [0, 100) that is the same for a node, a kind and an evaluation second."""
    digest = hashlib.sha1(f"{node}\0{kind}\0{int(now)}".encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 10_000 / 100


def _effective(mean_ms: float, rate: float, penalty_ms: float) -> float:
    return mean_ms + (1 - rate) / max(rate, 0.01) * penalty_ms


def typical_latency(nodes: list[NodeInput], penalty_ms: float) -> float:
    """The latency a node whose calls carry no latencies is weighed at: the median mean latency
    of the nodes with calls that have some, or ``penalty_ms`` when none has (its weight is then
    its success rate against the best node's: only its failures count)."""
    means = [mean for n in nodes if n.requests and (mean := n.latency.mean()) is not None]
    return statistics.median(means) if means else penalty_ms


def _mean(node: NodeInput, typical_ms: float) -> float:
    mean = node.latency.mean()
    return typical_ms if mean is None else mean


def reference_latency(nodes: list[NodeInput], penalty_ms: float) -> float | None:
    """The latency that weighs 100: the median mean latency of the nodes with calls (see
    :func:`typical_latency`), or the lowest effective latency when that is higher (every node
    failing now and then), so that the best node always weighs 100, as a node with no calls does."""
    rated = [n for n in nodes if n.success_rate is not None]
    if not rated:
        return None
    typical = typical_latency(nodes, penalty_ms)
    best = min(_effective(_mean(n, typical), n.success_rate or 0.0, penalty_ms) for n in rated)
    return max(typical, best)


def weigh(
    node: NodeInput, reference_ms: float | None, penalty_ms: float, typical_ms: float | None = None
) -> tuple[int, dict[str, Any]]:
    """A node's weight (1-100) from its success rate and latency, and the factors it came from;
    a node whose calls carry no latencies is taken at ``typical_ms`` (:func:`typical_latency`),
    so that its failures still cost it weight."""
    rate = node.success_rate
    measured = node.latency.mean()
    mean = measured if measured is not None else typical_ms
    if rate is None or mean is None or reference_ms is None:
        return 100, {"requests": node.requests, "note": "no calls to weigh: full weight"}
    effective = _effective(mean, rate, penalty_ms)
    weight = 100 if effective <= 0 else max(1, min(100, round(100 * reference_ms / effective)))
    factors = {
        "requests": node.requests,
        "success_rate": round(rate * 100, 3),
        "latency_mean_ms": None if measured is None else round(measured, 3),
        "failure_penalty_ms": penalty_ms,
        "effective_latency_ms": round(effective, 3),
        "reference_latency_ms": round(reference_ms, 3),
    }
    if measured is None:
        factors["assumed_latency_ms"] = round(mean, 3)
    return weight, factors


def _ejection_seconds(params: Params, ejections: int) -> int:
    return min(
        params.base_ejection_time * ejections, max(params.max_ejection_time, params.base_ejection_time)
    )


@dataclass
class _Candidate:
    node: NodeInput
    type: str
    enforcing: int
    severity: float
    host_rate: float | None = None
    service_average: float | None = None
    threshold: float | None = None


def _candidates(nodes: list[NodeInput], params: Params) -> list[_Candidate]:
    found: dict[str, _Candidate] = {}
    for node in nodes:
        if params.consecutive_5xx and node.consecutive_5xx >= params.consecutive_5xx:
            found[node.node] = _Candidate(
                node, "consecutive_5xx", params.enforcing_consecutive_5xx, float(node.consecutive_5xx)
            )
    volume = [n for n in nodes if n.requests >= max(1, params.success_rate_request_volume)]
    if len(volume) >= max(1, params.success_rate_minimum_hosts):
        rates = [100 * n.successes / n.requests for n in volume]
        mean = statistics.fmean(rates)
        threshold = mean - params.success_rate_stdev_factor / 1000 * statistics.pstdev(rates)
        for node, rate in zip(volume, rates, strict=True):
            if rate < threshold and node.node not in found:
                found[node.node] = _Candidate(
                    node, "success_rate", params.enforcing_success_rate, threshold - rate,
                    round(rate, 3), round(mean, 3), round(threshold, 3),
                )  # fmt: skip
    volume = [n for n in nodes if n.requests >= max(1, params.failure_percentage_request_volume)]
    if len(volume) >= max(1, params.failure_percentage_minimum_hosts):
        for node in volume:
            failing = 100 * (node.requests - node.successes) / node.requests
            if failing >= params.failure_percentage_threshold and node.node not in found:
                found[node.node] = _Candidate(
                    node, "failure_percentage", params.enforcing_failure_percentage, failing,
                    round(100 - failing, 3), None, float(params.failure_percentage_threshold),
                )  # fmt: skip
    return sorted(found.values(), key=lambda c: (-c.severity, c.node.node))


def evaluate(
    nodes: list[NodeInput],
    memory: dict[str, Memory],
    params: Params,
    now: float,
    *,
    enforce: bool = True,
    penalty_ms: float = 5000.0,
    draw: Callable[[str, str, float], float] = default_draw,
) -> tuple[list[NodeResult], list[Event]]:
    """Every node's new state and the decisions taken at ``now`` (epoch seconds)."""
    states = {n.node: replace(memory.get(n.node) or Memory()) for n in nodes}
    reference = reference_latency(nodes, penalty_ms)
    typical = typical_latency(nodes, penalty_ms)
    weighed = {n.node: weigh(n, reference, penalty_ms, typical) for n in nodes}
    events: list[Event] = []
    reasons: dict[str, list[str]] = {n.node: [] for n in nodes}

    def since(state: Memory) -> int | None:
        return None if state.last_action is None else max(0, round(now - state.last_action))

    for node in nodes:
        state = states[node.node]
        if state.ejected and state.ejected_until is not None and now >= state.ejected_until:
            events.append(
                Event(node.node, node.version, state.ejection_type, "uneject", state.ejections, enforce,
                      secs_since_last_action=since(state), factors=weighed[node.node][1])
            )  # fmt: skip
            state.ejected, state.ejected_until, state.last_action = False, None, now
            reasons[node.node].append(f"unejected after its {state.ejection_type} ejection")

    candidates = _candidates(nodes, params)
    flagged = {c.node.node for c in candidates}
    allowed = max(1, math.floor(len(nodes) * params.max_ejection_percent / 100))
    for candidate in candidates:
        node, state = candidate.node, states[candidate.node.node]
        if state.ejected:
            continue
        if sum(s.ejected for s in states.values()) >= allowed:
            reasons[node.node].append(
                f"{candidate.type} detected, not ejected: max_ejection_percent "
                f"{params.max_ejection_percent} allows {allowed} of {len(nodes)} nodes"
            )
            continue
        acted = draw(node.node, candidate.type, now) < candidate.enforcing
        number = state.ejections + 1 if acted else state.ejections
        events.append(
            Event(node.node, node.version, candidate.type, "eject", number, enforce and acted,
                  candidate.host_rate, candidate.service_average, candidate.threshold, since(state),
                  weighed[node.node][1])
        )  # fmt: skip
        if not acted:
            reasons[node.node].append(f"{candidate.type} detected, not enforced (enforcing_{candidate.type})")
            continue
        state.ejections = number
        state.ejected, state.ejection_type, state.last_action = True, candidate.type, now
        state.ejected_until = now + _ejection_seconds(params, number)

    results = []
    for node in nodes:
        state = states[node.node]
        healthy = not state.ejected and node.node not in flagged
        if (
            healthy
            and state.ejections
            and (state.last_action is None or now - state.last_action >= params.interval)
        ):
            state.ejections -= 1
        computed, factors = weighed[node.node]
        why = reasons[node.node]
        if state.ejected:
            computed = 0
            why.insert(0, f"ejected ({state.ejection_type}, ejection {state.ejections})")
        elif not node.requests:
            why.append("no calls in the interval: full weight")
        elif factors.get("latency_mean_ms") is None:  # calls reported without latencies
            why.append(
                f"success rate {factors['success_rate']}% over {node.requests} calls without latencies, "
                f"taken at {factors['assumed_latency_ms']} ms "
                f"(effective {factors['effective_latency_ms']} ms, "
                f"against {factors['reference_latency_ms']} ms)"
            )
        else:
            why.append(
                f"success rate {factors['success_rate']}%, "
                f"mean latency {factors['latency_mean_ms']} ms "
                f"(effective {factors['effective_latency_ms']} ms, "
                f"against {factors['reference_latency_ms']} ms)"
            )
        served, why = as_served(computed, why, enforce)
        results.append(NodeResult(node, state, computed, served, factors, why))
    return results, events


DRY_RUN = "dry run: "


def as_served(computed: int, reasons: list[str], enforce: bool) -> tuple[int, list[str]]:
    """The weight a node is served at, and why, under ``enforce`` as it is now: its computed
    weight, or in a dry run 100 with a note of the weight not applied.  A read derives them from
    the stored state and the current policy (the dry-run note stored by an evaluation under
    another ``enforce`` is replaced), so switching the dry run off or on shows at once."""
    kept = [reason for reason in reasons if not reason.startswith(DRY_RUN)]
    if enforce:
        return computed, kept
    return 100, kept + ([f"{DRY_RUN}weight {computed} not applied"] if computed != 100 else [])
