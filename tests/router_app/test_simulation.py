"""The deterministic simulation (tests/bench/router_sim.py) meets the issue's targets."""

from __future__ import annotations

from tests.bench.router_sim import simulate


def test_simulation__router_and_sdk_against_round_robin():
    result = simulate(seconds=40, rate=500, seed=3)
    plain, routed = result["round_robin"], result["router"]

    assert plain["requests"] == routed["requests"] > 19_000
    assert plain["error_rate"] > 0.01  # 1 node of 20 failing 30%: about 1.5%
    assert routed["error_rate"] * 10 <= plain["error_rate"]
    assert routed["p99_ms"] * 3 <= plain["p99_ms"]
    # the router's weights: the slow nodes weigh less than the healthy 100
    assert routed["weights"]["n18"] < 50 and routed["weights"]["n19"] < 50, routed["weights"]


def test_simulation__is_deterministic():
    assert simulate(seconds=15, rate=200, seed=5) == simulate(seconds=15, rate=200, seed=5)
