"""Platform events after commit, the watch history endpoint, and per-service policy rules."""

from __future__ import annotations

import pytest

from auth_app import services as auth_services
from auth_app.models import Account
from discovery_app import services
from event_app.models import Event
from tests.discovery_app.conftest import NOW

pytestmark = pytest.mark.django_db


def test_events__registered_and_deregistered_after_commit(make_node, committed):
    # when
    make_node(node_id="a")
    with committed():
        services.node_deregister(node_id="a", now=NOW)
    # then
    registered = Event.objects.get(type="discovery.node.registered")
    assert (registered.source, registered.subject) == ("/platform/discovery", "a")
    assert registered.data["service"] == "orders" and registered.data["created"] is True
    assert Event.objects.get(type="discovery.node.deregistered").data["reason"] == "deregistered"


def test_events__not_published_when_the_write_fails(writer, make_node):
    make_node(node_id="a", service="orders")
    writer.put(
        "/api/v1/discovery/nodes/a/", {"service": "billing", "address": "10.0.0.1", "port": 1}, format="json"
    )
    assert Event.objects.filter(type="discovery.node.registered").count() == 1


def test_results__history_since_an_index(reader, make_node, committed):
    make_node(node_id="a")
    make_node(node_id="b")
    with committed():
        services.node_deregister(node_id="a", now=NOW)
    response = reader.get("/api/v1/discovery/results/?service=orders&since=1")
    assert response.status_code == 200
    assert [(r["index"], r["action"], r["node"]["id"]) for r in response.json()["results"]] == [
        (2, "create", "b"),
        (3, "delete", "a"),
    ]


def test_results__without_service__is_400(reader):
    assert reader.get("/api/v1/discovery/results/").status_code == 400


@pytest.mark.parametrize("since", ["-5", "1.5", "x"])
def test_results__since_not_an_index__is_400_not_everything(reader, since):
    response = reader.get(f"/api/v1/discovery/results/?service=orders&since={since}")
    assert response.status_code == 400
    assert "since" in response.json()["error"]["details"]


def test_index__is_per_service(make_node):
    make_node("orders")
    make_node("orders")
    make_node("billing")
    from discovery_app import selectors

    assert (selectors.current_index("orders"), selectors.current_index("billing")) == (2, 1)


@pytest.fixture
def orders_only(api_client, committed):
    """A caller with discovery scopes whose role allows only the 'orders' service."""
    caller = api_client("discovery:read", "discovery:write")
    with committed():
        role = auth_services.role_create(name="orders-team")
        auth_services.rule_create(role=role, resource="discovery:orders", action="*")
        auth_services.binding_create(role=role, account=Account.objects.order_by("-id").first())
    return caller


def test_policy__other_service__read_is_403_policy_denied(orders_only, make_node):
    make_node("billing")
    make_node("orders")
    assert orders_only.get("/api/v1/discovery/services/orders/").status_code == 200
    response = orders_only.get("/api/v1/discovery/services/billing/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "policy_denied"


def test_policy__other_service__register_and_heartbeat_are_403(orders_only, make_node):
    make_node("billing", node_id="billing-1")
    body = {"service": "billing", "address": "10.0.0.1", "port": 80}
    assert orders_only.put("/api/v1/discovery/nodes/x/", body, format="json").status_code == 403
    response = orders_only.post("/api/v1/discovery/nodes/billing-1/heartbeat/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_denied")
    batch = orders_only.post("/api/v1/discovery/heartbeats/", {"nodes": ["billing-1"]}, format="json")
    assert batch.json()["denied"] == ["billing-1"]


def test_policy__service_list__shows_only_the_services_policy_lets_the_caller_read(orders_only, make_node):
    make_node("billing")
    make_node("orders")
    names = [row["name"] for row in orders_only.get("/api/v1/discovery/services/").json()["results"]]
    assert names == ["orders"]
