"""The hot path of routes reads (router_app.hot): the full view's answer, byte for byte."""

from __future__ import annotations

import pytest

from router_app import hot, services
from tests.hotpath import Driver
from tests.router_app.conftest import allow_only

pytestmark = pytest.mark.django_db

ROUTES = "/api/v1/router/routes/"


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("router:read")


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    """generated/expires come from the clock: the same for both answers compared."""
    monkeypatch.setattr("router_app.selectors.clock", lambda: 1_800_000_000.0)


@pytest.fixture
def fleet(make_node, committed):
    make_node(node_id="orders-1")
    make_node(node_id="orders-2", version="2.0")
    with committed():
        services.rate_limit_set(service="orders", caller="checkout", rate=5, burst=10)


def test_routes__hot_answer_is_the_full_views(driver, token, fleet):
    first, second = driver.warm("GET", ROUTES + "orders/", token)

    assert (first.hot, second.hot) == (False, True)
    assert second.comparable() == first.comparable()
    assert second.headers["Cache-Control"] == "max-age=30"


def test_routes__with_a_caller__hot_and_the_same(driver, token, fleet):
    first, second = driver.warm("GET", ROUTES + "orders/?caller=checkout", token)

    assert second.hot and second.comparable() == first.comparable()
    assert b'"rate_limit":{"rate":5.0,"burst":10}' in second.body


@pytest.mark.parametrize(
    ("query", "headers"),
    [("?labels=beta:true", {}), ("", {"X-Micro-Label-beta": "true"}), ("?caller=a%3Ab", {}), ("?x=1", {})],
)
def test_routes__labels_and_other_queries__go_to_the_full_view(driver, token, fleet, query, headers):
    driver.get(ROUTES + "orders/", token)  # warm

    reply = driver.get(ROUTES + "orders/" + query, token, headers=headers)

    assert not reply.hot


def test_routes__a_change__is_answered_by_the_full_view_first(driver, token, fleet, committed):
    driver.get(ROUTES + "orders/", token)
    with committed():
        services.policy_update(service="orders", values={"enforce": False})

    reply = driver.get(ROUTES + "orders/", token)

    assert not reply.hot and b'"enforce":false' in reply.body
    assert driver.get(ROUTES + "orders/", token).hot


def test_routes__policy_denial_and_unknown_service__are_the_full_views(driver, token, fleet, issue_token):
    denied = issue_token("router:read")
    allow_only("billing")
    driver.get(ROUTES + "orders/", token)

    refused = driver.get(ROUTES + "orders/", denied)
    unknown = driver.get(ROUTES + "nowhere/", token)

    assert (refused.hot, refused.status) == (False, 403)
    assert (unknown.hot, unknown.status) == (False, 404)
