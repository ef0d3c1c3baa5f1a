"""The router's deterministic simulation, and the SDK selector's picks per second.

``python -m tests.bench.router_sim`` runs, on a simulated clock with seeded randomness (the
same figures on every run and machine):

- a fleet of 20 nodes of one service: 17 healthy (about 25 ms), 2 slow (about 250 ms) and one
  that fails 30% of its calls fast (2 ms);
- a caller sending Poisson arrivals (1,000 a second for 120 s), once with plain round-robin
  (no retries) and once with the SDK's selector (``platform_client.router.Router``: weighted
  power of two choices, failure penalty, breakers, retries within the budget) fed every 10 s
  with the router's decisions (``router_app.outlier.evaluate``: Envoy's outlier detection and
  the weights) computed from the stats the selector recorded;
- then prints the caller's error rate and p99 latency for both, and the ratios (the targets:
  at least 10x fewer errors and a 3x lower p99).

It also times ``Router.select()`` among 100 nodes on one core (target: 200,000 picks/s).

    python -m tests.bench.router_sim [--seconds 120] [--rate 1000] [--seed 7] [--picks-seconds 2]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from platform_client.router import Router
from platform_client.router_stats import Histogram
from router_app.outlier import Memory, NodeInput, Params, evaluate

SERVICE = "orders"
NODES = 20
SLOW = {"n18", "n19"}
FAILING = {"n17": 0.30}
DECISION_SECONDS = 10.0
LOOKBACK_SECONDS = 20.0


@dataclass
class Fleet:
    """How each simulated node answers: latency (ms) and whether the call fails."""

    rng: random.Random

    def call(self, node: str) -> tuple[float, bool]:
        failing = FAILING.get(node)
        if failing is not None and self.rng.random() < failing:
            return 2.0, False  # fails fast
        base, spread = (150.0, 100.0) if node in SLOW else (15.0, 10.0)
        return base + self.rng.expovariate(1 / spread), True


class SimRouterAPI:
    """What the SDK fetches: routes from the simulated router's last decisions."""

    def __init__(self, node_ids: list[str]) -> None:
        self.weights = {node: 100 for node in node_ids}

    def call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        nodes = [
            {"id": node, "address": node, "port": 80, "metadata": {}, "labels": {}, "weight": weight}
            for node, weight in sorted(self.weights.items())
        ]
        return {"versions": [{"version": "1.0", "nodes": nodes}], "rules": [], "rate_limit": None, "ttl": 30}


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    attempts: int = 0
    ejections: int = 0
    #: The router's last weights of the slow and failing nodes (smart routing only).
    weights: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        p99 = ordered[int(0.99 * (len(ordered) - 1))]
        return {
            "requests": len(ordered),
            "attempts": self.attempts,
            "errors": self.errors,
            "error_rate": self.errors / len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2], 2),
            "p99_ms": round(p99, 2),
            "ejections": self.ejections,
            "weights": self.weights,
        }


def arrivals(seconds: float, rate: float, rng: random.Random) -> list[float]:
    times, now = [], 0.0
    while True:
        now += rng.expovariate(rate)
        if now >= seconds:
            return times
        times.append(now)


def round_robin(times: list[float], seed: int) -> Outcome:
    fleet, outcome = Fleet(random.Random(seed)), Outcome()
    nodes = [f"n{i:02d}" for i in range(NODES)]
    for number, _ in enumerate(times):
        latency, ok = fleet.call(nodes[number % NODES])
        outcome.attempts += 1
        outcome.latencies.append(latency)
        outcome.errors += not ok
    return outcome


class Decider:
    """The router's evaluation, every DECISION_SECONDS, over the windows the caller recorded."""

    def __init__(self, api: SimRouterAPI) -> None:
        self.api = api
        self.memory: dict[str, Memory] = {}
        self.windows: list[dict[str, Any]] = []

    def run(self, router: Router, now: float) -> int:
        self.windows = [w for w in self.windows if w["start"] >= now - LOOKBACK_SECONDS - 10]
        self.windows += router.recorder.closed(now)
        inputs = {node: NodeInput(node, "1.0") for node in self.api.weights}
        for window in self.windows:
            if window["start"] < now - LOOKBACK_SECONDS or not window["node"]:
                continue
            merged = inputs[window["node"]]
            merged.requests += window["requests"]
            merged.successes += window["successes"]
            merged.consecutive_5xx = max(merged.consecutive_5xx, window["consecutive_5xx"])
            merged.latency.merge(Histogram.from_wire(window["latency"]))
        results, events = evaluate(list(inputs.values()), self.memory, Params(), now)
        self.memory = {r.input.node: r.memory for r in results}
        self.api.weights = {r.input.node: r.weight for r in results}
        return sum(e.action == "eject" and e.enforced for e in events)


def smart(times: list[float], seed: int) -> Outcome:
    """The SDK selector on the simulated clock: picks, marks, retries, decisions every 10 s."""
    fleet, outcome = Fleet(random.Random(seed)), Outcome()
    clock = [0.0]
    api = SimRouterAPI([f"n{i:02d}" for i in range(NODES)])
    router = Router(
        api,  # type: ignore[arg-type]
        caller="sim",
        discovery=object(),  # type: ignore[arg-type]
        clock=lambda: clock[0],
        wall_clock=lambda: clock[0],
        rand=random.Random(seed + 1).random,
        publish=False,
    )
    decider = Decider(api)
    events: list[tuple[float, int, str, Any]] = []
    sequence = 0

    def push(at: float, kind: str, data: Any) -> None:
        nonlocal sequence
        sequence += 1
        heapq.heappush(events, (at, sequence, kind, data))

    for arrival in times:
        push(arrival, "arrive", (arrival, frozenset()))
    next_decision = DECISION_SECONDS
    while events:
        at, _, kind, data = heapq.heappop(events)
        while at >= next_decision:
            clock[0] = next_decision
            outcome.ejections += decider.run(router, next_decision)
            router.refresh(router._targets[SERVICE])
            next_decision += DECISION_SECONDS
        clock[0] = at
        if kind == "arrive":
            started, tried = data
            node = router.select(SERVICE, exclude=tried)
            latency, ok = fleet.call(node.id)
            outcome.attempts += 1
            push(at + latency / 1000, "done", (started, tried | {node.id}, node, latency, ok))
        else:
            started, tried, node, latency, ok = data
            router.mark(node, ok=ok, latency_ms=latency)
            if not ok and len(tried) < 3 and router.retry_allowed(SERVICE):
                push(at, "arrive", (started, tried))
                continue
            outcome.latencies.append((at - started) * 1000)
            outcome.errors += not ok
    outcome.weights = {node: api.weights[node] for node in sorted(SLOW | set(FAILING))}
    return outcome


def simulate(seconds: float = 120.0, rate: float = 1000.0, seed: int = 7) -> dict[str, Any]:
    times = arrivals(seconds, rate, random.Random(seed))
    plain = round_robin(times, seed).summary()
    routed = smart(times, seed).summary()
    return {
        "nodes": NODES,
        "slow": sorted(SLOW),
        "failing": FAILING,
        "seconds": seconds,
        "rate": rate,
        "round_robin": plain,
        "router": routed,
        "fewer_errors_x": round(plain["error_rate"] / routed["error_rate"], 1)
        if routed["error_rate"]
        else None,
        "lower_p99_x": round(plain["p99_ms"] / routed["p99_ms"], 2),
    }


def picks_per_second(seconds: float = 2.0, nodes: int = 100) -> dict[str, Any]:
    """``Router.select()`` among ``nodes`` nodes with mixed weights, on one core."""
    api = SimRouterAPI([f"n{i:03d}" for i in range(nodes)])
    api.weights = {node: 10 + (number * 37) % 91 for number, node in enumerate(sorted(api.weights))}
    router = Router(api, discovery=object(), publish=False)  # type: ignore[arg-type]
    select, mark = router.select, router.mark
    for _ in range(1000):
        mark(select(SERVICE), ok=True, latency_ms=5.0)
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(1000):
            select(SERVICE)
        count += 1000
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    return {
        "nodes": nodes,
        "picks_per_s": round(rate),
        "target_per_s": 200_000,
        "meets_target": rate >= 200_000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--picks-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    result = simulate(args.seconds, args.rate, args.seed)
    plain, routed = result["round_robin"], result["router"]
    rate, seconds = f"{args.rate:.0f}/s", f"{args.seconds:.0f} s"
    print(f"router simulation: {NODES} nodes (2 slow, 1 failing 30%), {rate} for {seconds}")
    print(f"  {'':14} {'error rate':>11} {'p50 ms':>8} {'p99 ms':>8} {'attempts':>9}")
    for name, row in (("round-robin", plain), ("router + SDK", routed)):
        cells = f"{row['error_rate']:>10.4%} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['attempts']:>9}"
        print(f"  {name:14} {cells}")
    fewer = result["fewer_errors_x"]
    errors = "none with the router" if fewer is None else f"{fewer}x fewer"
    print(f"  errors: {errors}; p99 {result['lower_p99_x']}x lower; router weights {routed['weights']}")
    picks = picks_per_second(args.picks_seconds)
    print(
        f"select() among {picks['nodes']} nodes: {picks['picks_per_s']:,} picks/s, one core (target 200,000)"
    )
    print(json.dumps({"simulation": result, "select": picks}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
