"""Outlier detection with Envoy's parameters and defaults, and the weights (pure functions)."""

from __future__ import annotations

import pytest

from platform_client.router_stats import Histogram
from router_app.outlier import Memory, NodeInput, Params, evaluate, weigh

NOW = 1_800_000_000.0


def node(
    name: str, requests: int = 200, successes: int | None = None, latency: float = 20.0, streak: int = 0
):
    histogram = Histogram()
    if requests:
        histogram.add(latency, requests)
    return NodeInput(
        name, "1.0", requests, requests if successes is None else successes, 0, 0, streak, histogram
    )


def fleet(count: int, *bad: NodeInput) -> list[NodeInput]:
    return [node(f"n{i:02d}") for i in range(count - len(bad))] + list(bad)


def ejected(results) -> list[str]:
    return sorted(r.input.node for r in results if r.memory.ejected)


def test_defaults__are_envoys():
    params = Params()

    assert (params.consecutive_5xx, params.interval, params.base_ejection_time, params.max_ejection_time) == (
        5,
        10,
        30,
        300,
    )
    assert (params.max_ejection_percent, params.success_rate_minimum_hosts) == (10, 5)
    assert (params.success_rate_request_volume, params.success_rate_stdev_factor) == (100, 1900)
    assert (params.failure_percentage_threshold, params.enforcing_failure_percentage) == (85, 0)


def test_consecutive_5xx__five_in_a_row_ejects__four_do_not():
    results, events = evaluate(fleet(10, node("bad", streak=5), node("almost", streak=4)), {}, Params(), NOW)

    assert ejected(results) == ["bad"]
    assert [(e.node, e.type, e.action, e.num_ejections, e.enforced) for e in events] == [
        ("bad", "consecutive_5xx", "eject", 1, True)
    ]
    assert next(r for r in results if r.input.node == "bad").weight == 0


def test_success_rate__a_node_below_mean_minus_1_9_stdev__is_ejected_with_the_figures():
    results, events = evaluate(fleet(10, node("bad", successes=140)), {}, Params(), NOW)

    assert ejected(results) == ["bad"]
    (event,) = events
    assert (event.type, event.host_rate) == ("success_rate", 70.0)
    assert event.service_average == pytest.approx(97.0)
    # mean 97, population stdev 9: threshold 97 - 1.9 * 9
    assert event.threshold == pytest.approx(97.0 - 1.9 * 9.0)
    assert event.factors["success_rate"] == 70.0


def test_success_rate__fewer_than_five_hosts_with_volume__ejects_nobody():
    few = [node("a"), node("b"), node("c"), node("bad", successes=100)] + [
        node(f"q{i}", requests=99) for i in range(5)
    ]

    results, events = evaluate(few, {}, Params(), NOW)

    assert ejected(results) == [] and events == []


def test_success_rate__a_node_under_the_request_volume__is_not_judged():
    results, _ = evaluate(fleet(10, node("quiet", requests=99, successes=50)), {}, Params(), NOW)

    assert ejected(results) == []


def test_max_ejection_percent__caps_ejections_but_always_allows_one():
    bad = [node(f"bad{i}", streak=9) for i in range(3)]

    twenty, _ = evaluate(fleet(20, *bad), {}, Params(), NOW)
    five, _ = evaluate(fleet(5, *bad[:2]), {}, Params(), NOW)

    assert len(ejected(twenty)) == 2  # 10% of 20
    assert len(ejected(five)) == 1  # 10% of 5 is 0: at least one host
    capped = next(r for r in five if r.input.node in {"bad0", "bad1"} and not r.memory.ejected)
    assert "max_ejection_percent" in capped.reasons[0]


def test_ejection_time__base_times_ejections_capped_at_max():
    memory = {"bad": Memory(ejections=12, last_action=NOW - 1000)}

    first, _ = evaluate(fleet(10, node("bad", streak=5)), {}, Params(), NOW)
    again, events = evaluate(fleet(10, node("bad", streak=5)), memory, Params(), NOW)

    bad_first = next(r for r in first if r.input.node == "bad")
    assert bad_first.memory.ejected_until == NOW + 30
    bad_again = next(r for r in again if r.input.node == "bad")
    assert bad_again.memory.ejections == 13
    assert bad_again.memory.ejected_until == NOW + 300
    assert events[0].num_ejections == 13


def test_uneject__after_the_ejection_time__is_an_event():
    memory = {"bad": Memory(True, NOW - 1, "consecutive_5xx", 1, NOW - 31)}

    results, events = evaluate(fleet(10, node("bad")), memory, Params(), NOW)

    assert ejected(results) == []
    assert [(e.node, e.action, e.type, e.secs_since_last_action) for e in events] == [
        ("bad", "uneject", "consecutive_5xx", 31)
    ]


def test_still_ejected__before_its_time__stays_at_weight_zero():
    memory = {"bad": Memory(True, NOW + 10, "success_rate", 1, NOW - 20)}

    results, events = evaluate(fleet(10, node("bad")), memory, Params(), NOW)

    assert ejected(results) == ["bad"] and events == []


def test_failure_percentage__off_by_default__recorded_not_enforced():
    nodes = [node(f"n{i}", requests=60) for i in range(4)] + [node("bad", requests=60, successes=6)]
    params = Params(success_rate_minimum_hosts=100)  # only failure percentage can act

    results, events = evaluate(nodes, {}, params, NOW)
    enforced, enforced_events = evaluate(
        nodes, {}, Params(**{**params.__dict__, "enforcing_failure_percentage": 100}), NOW
    )

    assert ejected(results) == []
    assert [(e.type, e.enforced) for e in events] == [("failure_percentage", False)]
    assert ejected(enforced) == ["bad"]
    assert [(e.type, e.enforced, e.host_rate, e.threshold) for e in enforced_events] == [
        ("failure_percentage", True, 10.0, 85.0)
    ]


def test_dry_run__records_decisions_and_serves_full_weights():
    results, events = evaluate(fleet(10, node("bad", streak=5)), {}, Params(), NOW, enforce=False)

    assert [(e.action, e.enforced) for e in events] == [("eject", False)]
    bad = next(r for r in results if r.input.node == "bad")
    assert (bad.weight, bad.computed_weight) == (100, 0)
    assert all(r.weight == 100 for r in results)


def test_weights__a_node_that_fails_fast_does_not_look_fast():
    # Linkerd's lesson: 1 ms answers with 30% failures must weigh less than 50 ms healthy answers
    fast_failing = node("fast", successes=140, latency=1.0)
    slow_ok = node("slow", latency=50.0)

    fast_weight, fast_factors = weigh(fast_failing, 50.0, 5000.0)
    slow_weight, _ = weigh(slow_ok, 50.0, 5000.0)

    assert fast_weight < 5 < slow_weight == 100
    assert fast_factors["effective_latency_ms"] > 2000


def test_weights__slower_nodes_weigh_less_and_silent_nodes_keep_full_weight():
    results, _ = evaluate(
        [node("a", latency=20), node("b", latency=20), node("slow", latency=200), node("idle", requests=0)],
        {},
        Params(),
        NOW,
    )
    weights = {r.input.node: r.weight for r in results}

    assert weights["a"] == weights["b"] == 100
    assert 5 <= weights["slow"] <= 15
    assert weights["idle"] == 100


def test_weights__when_every_node_fails_now_and_then__the_best_weighs_100_as_an_idle_one():
    # Sub-millisecond answers: one failure in 60 calls (83 ms effective against a 0.6 ms median)
    # weighed 1 while a node with no calls kept 100: the idle node got 100 times the traffic.
    proven = node("proven", requests=61, successes=60, latency=0.6)
    also = node("also", requests=100, successes=98, latency=0.6)
    failing = node("failing", requests=50, successes=0, latency=0.6, streak=50)

    results, _ = evaluate([proven, also, failing, node("idle", requests=0)], {}, Params(), NOW)
    weights = {r.input.node: r.computed_weight for r in results}

    assert weights["proven"] == weights["idle"] == 100
    assert 70 <= weights["also"] <= 90  # 2% failures against 1.6%: weighed against each other
    assert weights["failing"] == 0


def test_weights__calls_reported_without_latencies__weighed_not_a_crash():
    # The latency histogram is optional in a stats window: such a node has requests and nothing
    # to weigh. Its reason text read the missing factors (KeyError), so every evaluation of the
    # service raised in the beat task; found by the fault tests.
    silent = NodeInput("quiet", "1.0", 40, 40, 0, 0, 0, Histogram())

    results, _ = evaluate([silent, node("a")], {}, Params(), NOW)

    by_node = {r.input.node: r for r in results}
    assert by_node["quiet"].weight == 100  # no failure: as good as the typical node
    assert by_node["quiet"].reasons == [
        "success rate 100.0% over 40 calls without latencies, taken at 20.0 ms "
        "(effective 20.0 ms, against 20.0 ms)"
    ]
    assert by_node["a"].weight == 100


def no_latencies(name: str, requests: int, successes: int) -> NodeInput:
    return NodeInput(name, "1.0", requests, successes, 0, 0, 0, Histogram())


def test_weights__a_failing_node_without_latencies__loses_weight_as_one_with_them():
    # A caller other than the SDK may leave the histogram out: such a node kept weight 100
    # however often it failed, while a node reporting latencies and failing as much weighed ~1.
    failing = no_latencies("failing", 200, 100)
    measured = node("measured", successes=100)

    results, _ = evaluate([node("a"), node("b"), failing, measured], {}, Params(), NOW)
    by_node = {r.input.node: r for r in results}

    assert by_node["a"].weight == by_node["b"].weight == 100
    assert by_node["failing"].weight == by_node["measured"].weight == 1  # 50% failures, 5 s each
    assert by_node["failing"].factors["latency_mean_ms"] is None
    assert by_node["failing"].factors["assumed_latency_ms"] == 20.0


def test_weights__when_no_node_reports_latencies__each_weighs_its_success_rate_against_the_best():
    results, _ = evaluate(
        [no_latencies("ok", 100, 100), no_latencies("half", 100, 50), no_latencies("most", 100, 90)],
        {},
        Params(),
        NOW,
    )

    assert {r.input.node: r.weight for r in results} == {"ok": 100, "half": 50, "most": 90}
