"""The hot path of service lookups and heartbeats (discovery_app.hot)."""

from __future__ import annotations

import pytest

from auth_app.models import Account
from auth_app.services import binding_create, role_create, rule_create
from discovery_app import hot, selectors
from tests.discovery_app.conftest import NOW
from tests.hotpath import Driver

pytestmark = pytest.mark.django_db

SERVICES = "/api/v1/discovery/services/"
NODES = "/api/v1/discovery/nodes/"


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("discovery:read", "discovery:write")


def test_lookup__hot_answer_is_the_full_views(driver, token, make_node):
    make_node("orders")
    make_node("orders", version="2.0")

    first, second = driver.warm("GET", SERVICES + "orders/", token)

    assert (first.hot, second.hot) == (False, True)
    assert second.comparable() == first.comparable()
    assert second.headers["X-Discovery-Index"] == "2"


def test_lookup__if_none_match__304_with_index(driver, token, make_node):
    make_node("orders")
    etag = driver.get(SERVICES + "orders/", token).headers["ETag"]

    reply = driver.get(SERVICES + "orders/", token, headers={"If-None-Match": etag})

    assert reply.hot and reply.status == 304
    full = Driver([]).get(SERVICES + "orders/", token, headers={"If-None-Match": etag})
    assert reply.comparable() == full.comparable()


def test_lookup__if_none_match_star__hot_304_like_the_full_view(driver, token, make_node):
    make_node("orders")
    etag = driver.get(SERVICES + "orders/", token).headers["ETag"]

    reply = driver.get(SERVICES + "orders/", token, headers={"If-None-Match": "*"})

    assert reply.hot and (reply.status, reply.headers["ETag"]) == (304, etag)
    full = Driver([]).get(SERVICES + "orders/", token, headers={"If-None-Match": "*"})
    assert reply.comparable() == full.comparable()


def test_lookup__new_node__next_hot_lookup_has_it(driver, token, make_node):
    make_node("orders")
    driver.warm("GET", SERVICES + "orders/", token)

    make_node("orders")
    replies = [driver.get(SERVICES + "orders/", token) for _ in range(2)]

    assert [len(reply.json()["versions"][0]["nodes"]) for reply in replies] == [2, 2]
    assert replies[1].hot


@pytest.mark.parametrize("query", ["version=1.0", "label=zone:a", "passing=true", "index=0&wait=1ms"])
def test_lookup__filters_and_blocking_queries__left_to_the_full_view(driver, token, make_node, query):
    make_node("orders")
    driver.get(SERVICES + "orders/", token)

    reply = driver.get(f"{SERVICES}orders/?{query}", token)

    assert not reply.hot and reply.status == 200


def test_lookup__unknown_service__404_from_the_full_view(driver, token):
    first, second = driver.warm("GET", SERVICES + "ghost/", token)

    assert (first.hot, second.hot, second.status) == (False, False, 404)


def test_heartbeat__renewed_by_the_hot_path(driver, token, make_node):
    make_node("orders", node_id="orders-a")

    first, second = driver.warm("POST", NODES + "orders-a/heartbeat/", token)

    assert (first.hot, second.hot) == (False, True)
    assert second.status == 200
    assert second.headers.keys() == first.headers.keys()
    assert second.json().keys() == first.json().keys()
    assert second.json()["renewed"] >= first.json()["renewed"]
    assert selectors.last_heartbeats(["orders-a"])["orders-a"] > NOW


def test_heartbeat__unknown_node__404_node_not_registered_from_the_full_view(driver, token, make_node):
    make_node("orders", node_id="orders-a")
    driver.warm("POST", NODES + "orders-a/heartbeat/", token)

    reply = driver.call("POST", NODES + "ghost/heartbeat/", token)

    assert not reply.hot
    assert (reply.status, reply.json()["error"]["code"]) == (404, "node_not_registered")


def test_heartbeat__read_only_caller__403_from_the_full_view(driver, issue_token, make_node):
    make_node("orders", node_id="orders-a")
    reader = issue_token("discovery:read")

    first, second = driver.warm("POST", NODES + "orders-a/heartbeat/", reader)

    assert (first.hot, second.hot, second.status) == (False, False, 403)


def test_heartbeat__policy_refuses_the_service__403_from_the_full_view_and_nothing_logged(
    driver, token, make_node, caplog
):
    make_node("orders", node_id="orders-a")
    make_node("billing", node_id="billing-a")
    role = role_create(name="orders-team")
    rule_create(role=role, resource="discovery:orders", action="*", effect="allow", priority=0)
    binding_create(role=role, account=Account.objects.order_by("-id").first())
    driver.warm("POST", NODES + "orders-a/heartbeat/", token)

    reply = driver.call("POST", NODES + "billing-a/heartbeat/", token)

    assert not reply.hot
    assert (reply.status, reply.json()["error"]["code"]) == (403, "policy_denied")
    assert "hot path" not in caplog.text
