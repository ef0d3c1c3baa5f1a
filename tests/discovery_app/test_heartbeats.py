"""Heartbeats: renew in the cache only; 404 node_not_registered for nodes the registry lost."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

from discovery_app import selectors, services
from tests.discovery_app.conftest import NOW
from tests.redis_down import redis_known_down

pytestmark = pytest.mark.django_db

NODES = "/api/v1/discovery/nodes/"


def test_heartbeat__registered_node__is_renewed_without_a_query(writer, make_node, django_assert_num_queries):
    # given a registered node and a warm token
    make_node(node_id="a")
    writer.post(f"{NODES}a/heartbeat/")
    # when
    with django_assert_num_queries(0):
        response = writer.post(f"{NODES}a/heartbeat/")
    # then
    assert response.status_code == 200
    assert response.json()["id"] == "a" and response.json()["service"] == "orders"
    assert selectors.last_heartbeats(["a"])["a"] > NOW


def test_heartbeat__unknown_node__is_404_node_not_registered(writer):
    response = writer.post(f"{NODES}ghost/heartbeat/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "node_not_registered"


def test_heartbeat__expired_node__is_404_node_not_registered(writer, make_node, committed):
    # given a node that expired
    make_node(node_id="a", interval=1)
    with committed():
        services.registry_sweep(now=NOW + 10)
    # when
    response = writer.post(f"{NODES}a/heartbeat/")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "node_not_registered"


def test_heartbeat__read_scope_only__is_403(reader, make_node):
    make_node(node_id="a")
    assert reader.post(f"{NODES}a/heartbeat/").status_code == 403


def test_heartbeat__outsider__is_403(outsider, make_node):
    make_node(node_id="a")
    assert outsider.post(f"{NODES}a/heartbeat/").status_code == 403


def test_batch_heartbeat__renews_known_and_names_the_others(writer, make_node, django_assert_num_queries):
    # given
    make_node(node_id="a")
    make_node(node_id="b")
    writer.post("/api/v1/discovery/heartbeats/", {"nodes": ["a"]}, format="json")
    # when
    with django_assert_num_queries(0):
        response = writer.post("/api/v1/discovery/heartbeats/", {"nodes": ["a", "b", "zz"]}, format="json")
    # then
    assert response.status_code == 200
    assert response.json() == {"renewed": ["a", "b"], "not_registered": ["zz"], "denied": []}


def test_batch_heartbeat__bad_body__is_400(writer):
    response = writer.post("/api/v1/discovery/heartbeats/", {"nodes": "a"}, format="json")
    assert response.status_code == 400


def test_heartbeat__keeps_node_alive_past_its_first_ttl(make_node, committed):
    # given a node with a 10 s interval (30 s TTL), heartbeating every 10 s
    make_node(node_id="a", interval=10)
    for step in (10, 20, 30, 40):
        services.node_heartbeat(node_id="a", now=NOW + step)
        with committed():
            report = services.registry_sweep(now=NOW + step + 1)
        assert report.expired == []
    # then it is still passing long after its first TTL
    assert report.total == 1


def test_heartbeat__warm_memo__still_refuses_a_node_removed_elsewhere(make_node):
    # given a node renewed once in this process (its ttl and service are remembered)
    make_node(node_id="a")
    services.node_heartbeat(node_id="a", now=NOW + 1)
    # when another platform process removes it (only the shared cache entry goes)
    from django.core.cache import cache

    cache.delete(selectors.heartbeat_key("a"))
    # then the next heartbeat here is refused, and not recreated
    with pytest.raises(services.NodeNotRegistered):
        services.node_heartbeat(node_id="a", now=NOW + 2)
    assert selectors.last_heartbeats(["a"]) == {}


def test_heartbeat__warm_memo__renews_in_the_shared_cache(make_node):
    make_node(node_id="a")
    services.node_heartbeat(node_id="a", now=NOW + 1)
    services.node_heartbeat(node_id="a", now=NOW + 2)
    assert selectors.last_heartbeats(["a"]) == {"a": NOW + 2}


@pytest.mark.parametrize("node_id", ["a\x01b", "-dash", "x" * 201])
def test_heartbeat__an_id_no_node_can_have__is_404_without_touching_the_cache(api_client, node_id, recwarn):
    writer = api_client("discovery:write")

    response = writer.post(f"/api/v1/discovery/nodes/{quote(node_id)}/heartbeat/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "node_not_registered"
    assert not [w for w in recwarn if "CacheKeyWarning" in type(w.message).__name__]


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_heartbeat__redis_known_down__503_at_once_with_retry_after_the_seconds_left(writer, make_node):
    # Redis did not answer in time a moment ago (platformsite.cache.Guard): the heartbeat, which
    # lives only in Redis, is refused without sending anything, and told when to come back.
    make_node(node_id="a")
    assert writer.post(f"{NODES}a/heartbeat/").status_code == 200
    with redis_known_down():
        response = writer.post(f"{NODES}a/heartbeat/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    assert writer.post(f"{NODES}a/heartbeat/").status_code == 200


def test_heartbeat_entry__set_and_dropped_under_the_services_lock_not_after_commit():
    # set and dropped by hooks after each commit, a registration and a deregistration racing
    # could run their hooks in either order: a deleted node's heartbeats answered 200 for good
    services.node_register(node_id="ghost", service="orders", address="10.0.0.1", port=80)
    assert "ghost" in selectors.last_heartbeats(["ghost"])  # before the transaction commits
    services.node_deregister(node_id="ghost")
    assert "ghost" not in selectors.last_heartbeats(["ghost"])
