"""The sweep: expiry within 2 s of the TTL deadline, deregistration, heartbeat flush, the safety valve."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from discovery_app import deadlines, selectors, services
from discovery_app.models import Node, Result, Service
from event_app.models import Event
from tests.discovery_app.conftest import NOW

pytestmark = pytest.mark.django_db


def sweep(committed, at: float):
    with committed():
        return services.registry_sweep(now=NOW + at)


def test_expiry__before_the_ttl_deadline__node_stays_passing(make_node, committed):
    # given a node with interval 10 s, so TTL 30 s, and no heartbeat since registration
    make_node(node_id="a", interval=10)
    # when the sweep runs right at the deadline
    report = sweep(committed, 30)
    # then it is not expired yet
    assert report.expired == []
    assert Node.objects.get(id="a").status == "passing"


def test_expiry__one_sweep_after_the_deadline__node_is_critical(make_node, committed):
    # given
    make_node(node_id="a", interval=10)
    # when the sweep (every 1 s) runs just after the deadline
    report = sweep(committed, 31)
    # then the node is expired within 2 s of it
    assert report.expired == ["a"]
    node = Node.objects.get(id="a")
    assert node.status == "critical"
    assert node.critical_since.timestamp() == NOW + 31
    # and its heartbeat entry is gone, so heartbeats answer node_not_registered
    assert selectors.last_heartbeats(["a"]) == {}
    # and watchers and the event stream are told
    result = Result.objects.get(action="update", reason="expired")
    assert result.node["status"] == "critical"
    assert Event.objects.filter(type="discovery.node.expired", subject="a").exists()


def test_expiry__heartbeat_in_the_cache_counts__not_the_flushed_column(make_node, committed):
    # given a node whose only heartbeat since registration is in the cache (not flushed yet)
    make_node(node_id="a", interval=10)
    services.node_heartbeat(node_id="a", now=NOW + 25)
    # when the sweep runs after the registration's deadline but before the heartbeat's
    report = sweep(committed, 40)
    # then the node is kept
    assert report.expired == []
    # and expires one TTL after that heartbeat
    assert sweep(committed, 56).expired == ["a"]


def test_expiry__custom_ttl__is_honoured(make_node, committed):
    make_node(node_id="a", interval=5, ttl=60)
    assert sweep(committed, 59).expired == []
    assert sweep(committed, 61).expired == ["a"]


def test_deregister_after__critical_node_is_removed(make_node, committed):
    # given an expired node with deregister_after 60 s
    make_node(node_id="a", interval=10, deregister_after=60)
    sweep(committed, 31)
    # when the sweep runs before and after critical_since + 60 s
    assert sweep(committed, 90).deregistered == []
    report = sweep(committed, 91)
    # then it is removed, its service too (no node left)
    assert report.deregistered == ["a"]
    assert not Node.objects.exists() and not Service.objects.exists()
    assert Result.objects.filter(action="delete", node_id="a", reason="critical_too_long").exists()
    assert Event.objects.filter(type="discovery.node.deregistered", subject="a").exists()


def test_reregister__critical_node__is_passing_again(make_node, committed):
    make_node(node_id="a", interval=10)
    sweep(committed, 31)
    make_node(node_id="a", interval=10, now=NOW + 32)
    assert Node.objects.get(id="a").status == "passing"
    assert Node.objects.get(id="a").critical_since is None


def test_flush__cached_heartbeats_reach_the_database_in_bulk(make_node, committed, settings):
    # given two nodes heartbeating, the flush threshold at 15 s
    settings.DISCOVERY_FLUSH_SECONDS = 15
    make_node(node_id="a", interval=10)
    make_node(node_id="b", interval=10)
    services.node_heartbeat(node_id="a", now=NOW + 20)
    services.node_heartbeat(node_id="b", now=NOW + 5)
    # when the sweep runs
    report = sweep(committed, 21)
    # then only the heartbeat that is far enough ahead is written
    assert report.flushed == 1
    assert Node.objects.get(id="a").last_heartbeat.timestamp() == NOW + 20
    assert Node.objects.get(id="b").last_heartbeat.timestamp() == NOW


def test_sweep__only_one_runs_at_a_time(make_node, committed):
    from django.core.cache import cache

    cache.add(services.SWEEP_LOCK_KEY, 1, timeout=30)
    assert services.registry_sweep(now=NOW + 100).skipped is True


# --- The safety valve ---------------------------------------------------------------------------


def fleet(make_node, count: int):
    return [make_node(node_id=f"n{i}", interval=10).id for i in range(count)]


def test_valve__most_nodes_overdue__keeps_them_and_marks_degraded(make_node, committed):
    # given ten nodes, of which six stop heartbeating (a partition on the platform's side)
    ids = fleet(make_node, 10)
    for node_id in ids[:4]:
        services.node_heartbeat(node_id=node_id, now=NOW + 25)
    # when the sweep finds 60% overdue
    report = sweep(committed, 31)
    # then none expires, the registry is degraded, an event is raised
    assert report.expired == [] and sorted(report.held) == sorted(ids[4:])
    assert report.degraded
    assert Node.objects.filter(status="passing").count() == 10
    state = selectors.degraded_state()
    assert state["held"] == 6 and state["total"] == 10
    assert Event.objects.filter(type="discovery.registry.degraded").count() == 1


def test_valve__share_at_the_threshold__expires_normally(make_node, committed):
    # given ten nodes, five overdue: exactly 50%, not more
    ids = fleet(make_node, 10)
    for node_id in ids[:5]:
        services.node_heartbeat(node_id=node_id, now=NOW + 25)
    report = sweep(committed, 31)
    assert sorted(report.expired) == sorted(ids[5:])
    assert selectors.degraded_state() is None


def test_valve__clears_when_heartbeats_resume(make_node, committed):
    # given a degraded registry
    ids = fleet(make_node, 10)
    sweep(committed, 31)
    assert selectors.degraded_state() is not None
    # when the nodes heartbeat again
    for node_id in ids:
        services.node_heartbeat(node_id=node_id, now=NOW + 40)
    report = sweep(committed, 41)
    # then the registry is healthy again, nothing expired
    assert not report.degraded and report.expired == []
    assert selectors.degraded_state() is None
    assert Event.objects.filter(type="discovery.registry.recovered").count() == 1


def test_valve__threshold_is_recomputed_from_the_current_registry(make_node, committed):
    # given a degraded registry: 6 of 10 overdue
    ids = fleet(make_node, 10)
    for node_id in ids[:4]:
        services.node_heartbeat(node_id=node_id, now=NOW + 25)
    sweep(committed, 31)
    # when the operator deregisters most of the held ones, and new healthy nodes join
    with committed():
        for node_id in ids[4:8]:
            services.node_deregister(node_id=node_id, now=NOW + 32)
    for node_id in ids[:4]:
        services.node_heartbeat(node_id=node_id, now=NOW + 33)
    # then the next sweep sees 2 of 6 overdue: it expires them and clears the degraded mark
    report = sweep(committed, 34)
    assert sorted(report.expired) == sorted(ids[8:])
    assert selectors.degraded_state() is None


def test_valve__expirations_spread_over_sweeps__still_count(make_node, committed, settings):
    # given ten nodes; three expire in one sweep (30%)
    settings.DISCOVERY_VALVE_WINDOW_SECONDS = 60
    ids = fleet(make_node, 10)
    for node_id in ids[3:]:
        services.node_heartbeat(node_id=node_id, now=NOW + 5)
    assert len(sweep(committed, 31).expired) == 3
    # when three more go quiet a few seconds later (60% within the window)
    for node_id in ids[6:]:
        services.node_heartbeat(node_id=node_id, now=NOW + 30)
    report = sweep(committed, 36)
    # then the valve holds them
    assert report.expired == [] and report.degraded


def test_valve__small_registry__is_not_protected(make_node, committed):
    make_node(node_id="a", interval=10)
    assert sweep(committed, 31).expired == ["a"]


def test_valve__held_past_the_max_hold__expires_anyway(make_node, committed, settings):
    settings.DISCOVERY_VALVE_MAX_HOLD_SECONDS = 60
    fleet(make_node, 10)
    assert sweep(committed, 31).degraded
    assert sweep(committed, 60).degraded
    report = sweep(committed, 92)
    assert len(report.expired) == 10


def test_dashboard_api__registry_shows_degraded(reader, make_node, committed):
    fleet(make_node, 10)
    sweep(committed, 31)
    body = reader.get("/api/v1/discovery/registry/").json()
    assert body["degraded"] is True and body["degraded_state"]["held"] == 10


def test_purge__drops_results_older_than_an_hour(make_node, committed):
    make_node(node_id="a")
    make_node(node_id="b", now=NOW + 3000)
    assert services.results_purge(now=NOW + 3601) == 1
    assert list(Result.objects.values_list("node_id", flat=True)) == ["b"]


def test_sweep__expires_at_most_a_batch_per_sweep(make_node, committed, settings):
    settings.DISCOVERY_SWEEP_BATCH = 2
    settings.DISCOVERY_VALVE_MIN_NODES = 100
    fleet(make_node, 5)
    assert len(sweep(committed, 31).expired) == 2
    assert len(sweep(committed, 32).expired) == 2
    assert len(sweep(committed, 33).expired) == 1


# --- The deadline index (Redis): sweeps between full passes read only the nodes it names ---------

needs_redis = pytest.mark.skipif(
    not deadlines.available(), reason="the deadline index needs Redis (REDIS_URL)"
)


@needs_redis
def test_due_sweep__expires_the_overdue_node_named_by_the_index(make_node, committed, settings):
    # given two nodes, a full pass, and a heartbeat of one of them
    settings.DISCOVERY_FULL_SWEEP_SECONDS = 60
    make_node(node_id="a", interval=10)
    make_node(node_id="b", interval=10)
    sweep(committed, 1)
    services.node_heartbeat(node_id="b", now=NOW + 20)
    # when the next sweep (not a full pass) runs after a's deadline
    with CaptureQueriesContext(connection) as queries:
        report = sweep(committed, 31)
    # then a expires, b keeps the deadline of its heartbeat, and no query read every node
    assert report.expired == ["a"]
    assert deadlines.score("b") == NOW + 20 + 30 and deadlines.score("a") is None
    assert not any("last_heartbeat" in q["sql"] and "WHERE" not in q["sql"] for q in queries.captured_queries)


@needs_redis
def test_due_sweep__node_the_index_lost__is_expired_by_the_next_full_pass(make_node, committed, settings):
    # given a node whose deadline is no longer indexed (say Redis lost it)
    settings.DISCOVERY_FULL_SWEEP_SECONDS = 40
    make_node(node_id="a", interval=10)
    sweep(committed, 1)
    deadlines.drop(["a"])
    # when sweeps run past its deadline
    between = sweep(committed, 31)
    full = sweep(committed, 41)
    # then the full pass (40 s after the last one) finds it
    assert between.expired == [] and full.expired == ["a"]


@needs_redis
def test_due_sweep__most_nodes_overdue__the_valve_holds_them(make_node, committed, settings):
    settings.DISCOVERY_FULL_SWEEP_SECONDS = 60
    ids = fleet(make_node, 10)
    sweep(committed, 1)
    for node_id in ids[:4]:
        services.node_heartbeat(node_id=node_id, now=NOW + 25)
    report = sweep(committed, 31)
    assert report.expired == [] and sorted(report.held) == sorted(ids[4:]) and report.degraded


@needs_redis
def test_heartbeat__after_the_script_cache_was_flushed__renews_and_indexes(make_node, settings):
    # given a node, and a Redis server that forgot its scripts (a restart, SCRIPT FLUSH)
    import redis

    make_node(node_id="a", interval=10)
    redis.Redis.from_url(settings.REDIS_URL).script_flush()
    # when
    services.node_heartbeat(node_id="a", now=NOW + 5)
    # then
    assert deadlines.score("a") == NOW + 5 + 30
    assert selectors.last_heartbeats(["a"]) == {"a": NOW + 5}


@needs_redis
def test_batch_heartbeat__entry_gone_since_the_read__is_not_brought_back(make_node):
    # given two nodes, one of which expires between the batch's read and its write
    make_node(node_id="a", interval=10)
    make_node(node_id="b", interval=10)
    read = {selectors.heartbeat_key(n): (NOW, 30, "orders") for n in ("a", "b")}
    cache.delete(selectors.heartbeat_key("b"))
    # when
    with mock.patch.object(cache, "get_many", return_value=read):
        answer = services.node_heartbeats(node_ids=["a", "b"], now=NOW + 5)
    # then
    assert answer == {"renewed": ["a"], "not_registered": ["b"], "denied": []}
    assert selectors.last_heartbeats(["a", "b"]) == {"a": NOW + 5}
    assert deadlines.score("a") == NOW + 35


@needs_redis
def test_due_sweep__nodes_the_valve_holds__stay_held_until_the_max_hold(make_node, committed, settings):
    # given most of the fleet overdue, held by a full pass that had to rebuild the index
    settings.DISCOVERY_FULL_SWEEP_SECONDS = 1000
    settings.DISCOVERY_VALVE_MAX_HOLD_SECONDS = 60
    ids = fleet(make_node, 10)
    for node_id in ids[:4]:
        services.node_heartbeat(node_id=node_id, now=NOW + 25)
    deadlines.drop(ids)  # say Redis lost the index: the full pass rebuilds it
    assert sweep(committed, 31).degraded
    # when the sweeps between full passes run, then after the longest hold
    between = sweep(committed, 32)
    recovered_between = Event.objects.filter(type="discovery.registry.recovered").count()
    past_hold = sweep(committed, 92)
    # then the registry stays degraded (no recovered/degraded flapping) until the hold ends
    assert between.degraded and sorted(between.held) == sorted(ids[4:]) and recovered_between == 0
    assert set(ids[4:]) <= set(past_hold.expired) and not past_hold.degraded
