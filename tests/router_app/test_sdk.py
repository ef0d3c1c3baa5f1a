"""The SDK selector with a fake platform: filters, marks, breakers, backoff, fallback, limits, retries."""

from __future__ import annotations

import copy
import random
from collections import Counter
from typing import Any

import httpx
import pytest

from platform_client.router import NoRoute, RateLimited, Router
from platform_client.router_local import CLOSED, HALF_OPEN, OPEN, Breaker, RetryBudget, TokenBucket
from platform_client.session import PlatformError


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSession:
    """The router's API as the SDK calls it; ``down`` makes every call fail to connect."""

    def __init__(self, routes: dict[str, dict[str, Any]] | None = None) -> None:
        self.routes = routes or {}
        self.down = False
        self.posted: list[dict[str, Any]] = []
        self.answer_posts: Exception | None = None

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.down:
            raise httpx.ConnectError("router unreachable")
        if method == "GET":
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if name not in self.routes:
                raise PlatformError(404, "unknown_service", name)
            return copy.deepcopy(self.routes[name])
        if self.answer_posts is not None:
            raise self.answer_posts
        self.posted.append(kwargs["json"])
        return {"accepted": len(kwargs["json"]["windows"]), "skipped": []}


class FakeDiscovery:
    def __init__(self, documents: dict[str, dict[str, Any]]) -> None:
        self.documents = documents

    def get_service(self, name: str) -> dict[str, Any]:
        if name not in self.documents:
            raise PlatformError(404, "not_found", name)
        return self.documents[name]


def routes(nodes, *, rules=(), rate_limit=None, ttl=30) -> dict[str, Any]:
    """A routes document: ``nodes`` are (id, version, weight, labels)."""
    versions: dict[str, list] = {}
    for node_id, version, weight, labels in nodes:
        versions.setdefault(version, []).append(
            {
                "id": node_id,
                "address": "10.0.0.1",
                "port": 80,
                "metadata": {},
                "labels": labels,
                "weight": weight,
            }
        )
    return {
        "service": "orders",
        "versions": [{"version": v, "nodes": n} for v, n in versions.items()],
        "rules": list(rules),
        "rate_limit": rate_limit,
        "ttl": ttl,
    }


def discovery_document(count: int) -> dict[str, Any]:
    nodes = [
        {"id": f"d{i}", "address": "10.0.1.1", "port": 80 + i, "metadata": {}, "status": "passing"}
        for i in range(count)
    ]
    return {"name": "orders", "index": 3, "versions": [{"version": "1.0", "nodes": nodes}]}


@pytest.fixture
def clock():
    return Clock()


def make_router(session, clock, discovery=None, seed=1) -> Router:
    return Router(
        session,
        caller="checkout",
        discovery=discovery or FakeDiscovery({}),
        clock=clock,
        wall_clock=clock,
        rand=random.Random(seed).random,
        publish=False,
    )


def refresh_now(router: Router, service: str = "orders") -> None:
    """Refresh in this thread (select() refreshes in the background)."""
    router.refresh(router._targets[service])


def picks(router, count, **options) -> Counter:
    counted: Counter = Counter()
    for _ in range(count):
        node = router.select("orders", **options)
        counted[node.id] += 1
        router.mark(node, ok=True, latency_ms=10)
    return counted


def test_select__honours_version_and_labels(clock):
    # regression: the seed's selector returned every node round-robin, its filters a TODO
    session = FakeSession(
        {"orders": routes([("a", "1.0", 100, {}), ("b", "2.0", 100, {}), ("c", "2.0", 100, {"zone": "eu"})])}
    )
    router = make_router(session, clock)

    assert set(picks(router, 200, version="2.0")) == {"b", "c"}
    assert set(picks(router, 200, labels={"zone": "eu"})) == {"c"}
    assert set(picks(router, 200)) == {"a", "b", "c"}


def test_select__by_weight__and_never_an_ejected_node(clock):
    session = FakeSession(
        {"orders": routes([("a", "1.0", 100, {}), ("b", "1.0", 25, {}), ("x", "1.0", 0, {})])}
    )
    router = make_router(session, clock)

    counted = picks(router, 10_000)

    assert counted["x"] == 0
    assert counted["a"] > 2 * counted["b"] > 0


def test_select__every_node_at_weight_zero__still_picks(clock):
    router = make_router(FakeSession({"orders": routes([("a", "1.0", 0, {}), ("b", "1.0", 0, {})])}), clock)

    assert set(picks(router, 100)) == {"a", "b"}


def test_mark__failures_steer_picks_away(clock):
    # regression: the seed's Mark did nothing
    router = make_router(
        FakeSession({"orders": routes([("a", "1.0", 100, {}), ("b", "1.0", 100, {})])}), clock
    )
    node = router.select("orders")
    router.mark(node, ok=False, latency_ms=2.0)  # failing fast costs the 5 s penalty
    bad = node.id

    counted = picks(router, 1000)

    assert counted[bad] < 300  # only when both draws land on it (about a quarter)


def test_breaker__opens_after_20_calls_half_failing__one_trial_after_5s(clock):
    router = make_router(
        FakeSession({"orders": routes([("a", "1.0", 100, {}), ("b", "1.0", 100, {})])}), clock
    )
    a = router._target("orders").nodes["a"]
    for number in range(20):
        router.mark(a, ok=number % 2 == 0, latency_ms=1)
    assert a.breaker.state == OPEN

    assert picks(router, 500)["a"] == 0  # open: refused while the other node takes the calls
    clock.now += 5.0
    trial = router.select("orders", exclude={"b"})
    assert trial.id == "a" and a.breaker.state == HALF_OPEN
    assert not a.available(clock.now)  # one trial at a time
    router.mark(trial, ok=True, latency_ms=1)
    assert a.breaker.state == CLOSED


def test_breaker__a_failed_trial_opens_it_again():
    breaker = Breaker()
    for number in range(20):
        breaker.record(number < 10, 100.0)
    assert breaker.state == OPEN and not breaker.available(104.9)

    assert breaker.available(105.0)
    breaker.picked(105.0)
    breaker.record(False, 105.1)

    assert breaker.state == OPEN and not breaker.available(106.0)


def test_breaker__under_20_calls__stays_closed_whatever_the_errors():
    breaker = Breaker()
    for _ in range(19):
        breaker.record(False, 100.0)

    assert breaker.state == CLOSED


def test_retry_after__keeps_the_node_out_for_that_long(clock):
    router = make_router(
        FakeSession({"orders": routes([("a", "1.0", 100, {}), ("b", "1.0", 100, {})])}), clock
    )
    node = router.select("orders")
    router.mark(node, ok=False, latency_ms=1, retry_after=3.0)

    assert node.id not in picks(router, 200)
    clock.now += 3.0
    node.ewma = 0.0  # forget the failure's latency: only the backoff is tested
    assert node.id in picks(router, 200)


def test_router_down__zero_failed_picks_from_the_discovery_cache(clock):
    session = FakeSession()
    session.down = True
    router = make_router(session, clock, FakeDiscovery({"orders": discovery_document(5)}))

    counted = picks(router, 10_000)

    assert sum(counted.values()) == 10_000
    assert set(counted) == {f"d{i}" for i in range(5)}
    assert router.source("orders") == "discovery"


def test_router_goes_down__routes_used_until_they_expire__then_discovery(clock):
    session = FakeSession({"orders": routes([("r1", "1.0", 100, {})], ttl=30)})
    router = make_router(session, clock, FakeDiscovery({"orders": discovery_document(2)}))
    assert set(picks(router, 10)) == {"r1"}
    session.down = True

    clock.now += 20
    refresh_now(router)
    assert router.source("orders") == "router" and set(picks(router, 10)) == {"r1"}
    clock.now += 15  # past the routes' expiry
    refresh_now(router)
    assert router.source("orders") == "discovery" and set(picks(router, 100)) == {"d0", "d1"}
    session.down = False
    refresh_now(router)
    assert router.source("orders") == "router"


def test_unknown_everywhere__is_no_route(clock):
    router = make_router(FakeSession(), clock)

    with pytest.raises(NoRoute):
        router.select("orders")


def test_no_route__names_why_the_router_and_discovery_had_none(clock):
    # it said only "No node of 'orders' to call", hiding a refused connection or credentials
    session = FakeSession()
    session.down = True
    router = make_router(session, clock, discovery=FakeDiscovery({}))

    with pytest.raises(NoRoute) as refused:
        router.select("orders")
    assert "router unreachable" in refused.value.message and "discovery: " in refused.value.message


def test_rate_limit__the_bucket_refuses_and_the_drop_is_counted(clock):
    session = FakeSession({"orders": routes([("a", "1.0", 100, {})], rate_limit={"rate": 1.0, "burst": 2})})
    router = make_router(session, clock)
    router.select("orders")
    router.select("orders")

    with pytest.raises(RateLimited) as refused:
        router.select("orders")

    assert refused.value.status == 429 and 0 < refused.value.retry_after <= 1.0
    clock.now += 1.0
    assert router.select("orders").id == "a"
    (dropped,) = [w for w in router.recorder.closed(clock.now + 20) if w["dropped"]]
    assert (dropped["node"], dropped["dropped"]) == ("", 1)


def test_rule_share__twenty_percent_within_bounds(clock):
    rules = [{"version": "2.0", "key": "beta", "value": "true", "weight": 20, "priority": 0}]
    nodes = [("a", "1.0", 100, {}), ("b", "2.0", 0, {}), ("c", "2.0", 100, {})]
    router = make_router(FakeSession({"orders": routes(nodes, rules=rules)}), clock, seed=11)
    count = 20_000

    counted = picks(router, count, labels={"beta": "true"})

    # 20% by the rule plus half of the default 80% (one of the two weighted nodes is 2.0)
    share = 0.2 + 0.8 * 0.5
    assert abs(counted["c"] / count - share) <= 4 * (share * (1 - share) / count) ** 0.5


def test_token_bucket_and_retry_budget():
    bucket = TokenBucket(rate=10, burst=1, now=0.0)
    assert bucket.take(0.0) and not bucket.take(0.05) and bucket.take(0.1)

    budget = RetryBudget()
    assert [budget.try_retry(0.0) for _ in range(4)] == [True, True, True, False]  # at least 3
    for _ in range(100):
        budget.call(1.0)
    assert sum(budget.try_retry(1.0) for _ in range(50)) == 17  # 20% of 100, 3 taken already


def test_flush__sends_closed_windows__keeps_them_when_the_router_is_down(clock):
    clock.now = 1_000_000.0
    session = FakeSession({"orders": routes([("a", "1.0", 100, {})])})
    router = make_router(session, clock)
    node = router.select("orders")
    router.mark(node, ok=False, latency_ms=12.0)
    clock.now += 10
    session.down = True

    assert router.flush() == 0
    session.down = False
    assert router.flush() == 1

    (body,) = session.posted
    (sent,) = body["windows"]
    assert body["caller"] == "checkout"
    assert (sent["service"], sent["node"], sent["requests"], sent["errors"], sent["consecutive_5xx"]) == (
        "orders",
        "a",
        1,
        1,
        1,
    )


def test_publisher__sends_each_window_just_after_it_closes(clock):
    # it waited a window's length from when it started, so a window went out up to 10 s late and
    # the router's 20 s lookback often missed it
    router = make_router(FakeSession(), clock)
    for now in (1_000_000.0, 1_000_003.0, 1_000_009.9):
        clock.now = now
        waits = [router._until_window_closes() for _ in range(50)]
        closes = 1_000_010.0 - now
        assert all(closes + 0.1 <= wait <= closes + 1.0 for wait in waits), (now, min(waits), max(waits))


def test_flush__a_refused_batch_is_not_sent_again(clock):
    session = FakeSession({"orders": routes([("a", "1.0", 100, {})])})
    router = make_router(session, clock)
    router.mark(router.select("orders"), ok=True, latency_ms=1)
    session.answer_posts = PlatformError(404, "unknown_service", "gone")

    assert router.flush(everything=True) == 0
    session.answer_posts = None
    assert router.flush(everything=True) == 0 and session.posted == []
