"""The routes API: versions, nodes with weights and reasons, rules applied, expiry, caching, labels."""

from __future__ import annotations

import time
from datetime import datetime
from unittest import mock

import pytest

from router_app import services
from router_app.services import common
from tests.router_app.conftest import allow_only, window

pytestmark = pytest.mark.django_db

ROUTES = "/api/v1/router/routes/"


@pytest.fixture
def two_versions(make_node):
    for i in range(4):
        make_node(node_id=f"orders-a{i}", version="1.0")
    for i in range(2):
        make_node(node_id=f"orders-b{i}", version="2.0", metadata={"zone": "eu"})


def nodes_of(routes) -> dict[str, dict]:
    return {node["id"]: node for version in routes["versions"] for node in version["nodes"]}


def test_routes__versions_nodes_weights_reasons_and_expiry(reader, two_versions):
    response = reader.get(f"{ROUTES}orders/")

    assert response.status_code == 200, response.content
    routes = response.json()
    assert [(v["version"], len(v["nodes"])) for v in routes["versions"]] == [("1.0", 4), ("2.0", 2)]
    assert [v["share"] for v in routes["versions"]] == [
        pytest.approx(66.667, abs=0.01),
        pytest.approx(33.333, abs=0.01),
    ]
    node = nodes_of(routes)["orders-a0"]
    assert (node["weight"], node["state"], node["reasons"]) == (
        100,
        "active",
        ["not evaluated yet: full weight"],
    )
    generated = datetime.fromisoformat(routes["generated"])
    expires = datetime.fromisoformat(routes["expires"])
    assert (expires - generated).total_seconds() == routes["ttl"] == 30
    assert response["Cache-Control"] == "max-age=30"


def test_routes__an_ejected_node__weighs_zero_with_its_reason(reader, reporter, two_versions, committed):
    reporter.post(
        "/api/v1/router/stats/",
        {"windows": [window(node="orders-a0", requests=10, successes=0, consecutive_5xx=6)]},
        format="json",
    )
    with committed():
        services.service_evaluate(service="orders", now=time.time())

    node = nodes_of(reader.get(f"{ROUTES}orders/").json())["orders-a0"]

    assert (node["weight"], node["state"]) == (0, "ejected")
    assert node["ejected_until"] and node["reasons"][0].startswith("ejected (consecutive_5xx")


def test_routes__a_rule_shifts_the_share_of_labelled_requests(reader, writer, two_versions, committed):
    with committed():
        writer.post(
            "/api/v1/router/rules/",
            {"service": "orders", "version": "2.0", "key": "beta", "value": "true", "weight": 20},
            format="json",
        )

    plain = reader.get(f"{ROUTES}orders/").json()
    labelled = reader.get(f"{ROUTES}orders/", {"labels": "beta:true"}).json()
    by_header = reader.get(f"{ROUTES}orders/", HTTP_X_MICRO_LABEL_BETA="true").json()

    assert plain["rules_applied"] == [] and len(plain["rules"]) == 1
    assert [r["version"] for r in labelled["rules_applied"]] == ["2.0"]
    # 20% by the rule, and the 80% left split by node weight (2 of 6 nodes are 2.0)
    assert labelled["versions"][1]["share"] == pytest.approx(20 + 80 * 2 / 6, abs=0.01)
    assert by_header["versions"] == labelled["versions"]
    assert labelled["request_labels"] == {"beta": "true"}


def test_routes__request_labels_narrow_the_default_share_as_the_sdk_picks(reader, two_versions):
    # only the 2.0 nodes carry zone=eu: the SDK's selector sends every such request there
    labelled = reader.get(f"{ROUTES}orders/", {"labels": "zone:eu"}).json()
    assert [v["share"] for v in labelled["versions"]] == [0, 100]
    # a label no node carries narrows nothing
    other = reader.get(f"{ROUTES}orders/", {"labels": "zone:us"}).json()
    assert [v["share"] for v in other["versions"]] == [
        pytest.approx(66.667, abs=0.01),
        pytest.approx(33.333, abs=0.01),
    ]


def test_routes__labels_put_on_nodes(reader, writer, two_versions, committed):
    with committed():
        writer.post(
            "/api/v1/router/labels/",
            {"service": "orders", "version": "1.0", "key": "canary", "value": "yes", "weight": 50},
            format="json",
        )

    nodes = nodes_of(reader.get(f"{ROUTES}orders/").json())

    assert sum(node["labels"] == {"canary": "yes"} for node in nodes.values()) == 2


def test_routes__the_callers_rate_limit(reader, writer, two_versions, committed):
    with committed():
        writer.post(
            "/api/v1/router/ratelimits/",
            {"service": "orders", "caller": "checkout", "rate": 5, "burst": 10},
            format="json",
        )
        writer.post(
            "/api/v1/router/ratelimits/",
            {"service": "orders", "caller": "*", "rate": 1, "burst": 1},
            format="json",
        )

    assert reader.get(f"{ROUTES}orders/", {"caller": "checkout"}).json()["rate_limit"] == {
        "rate": 5.0,
        "burst": 10,
    }
    assert reader.get(f"{ROUTES}orders/", {"caller": "other"}).json()["rate_limit"] == {
        "rate": 1.0,
        "burst": 1,
    }


def test_routes__warm__are_served_from_the_cache_without_a_query(
    reader, two_versions, django_assert_num_queries
):
    reader.get(f"{ROUTES}orders/")

    with django_assert_num_queries(0):
        assert reader.get(f"{ROUTES}orders/").status_code == 200


def test_routes__a_change_is_seen_at_once(reader, writer, two_versions, committed):
    reader.get(f"{ROUTES}orders/")
    with committed():
        writer.patch("/api/v1/router/services/orders/policy/", {"enforce": False}, format="json")

    assert reader.get(f"{ROUTES}orders/").json()["enforce"] is False


def test_routes__unknown_service__is_404(reader, two_versions):
    response = reader.get(f"{ROUTES}nowhere/")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_service")


@pytest.mark.parametrize(
    "params",
    [{"labels": "nocolon"}, {"labels": "Bad Key:x"}, {"labels": ",".join(f"k{i}:v" for i in range(30))}],
)
def test_routes__bad_labels__are_400(reader, two_versions, params):
    response = reader.get(f"{ROUTES}orders/", params)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_labels")


def test_routes__a_label_without_a_value__is_named_by_its_key(reader, two_versions):
    error = reader.get(f"{ROUTES}orders/", {"labels": "beta"}).json()["error"]
    assert error["details"] == {"labels": ["beta"]}  # it read "beta:None"


def test_routes__bad_caller__is_400(reader, two_versions):
    assert reader.get(f"{ROUTES}orders/", {"caller": "two words"}).status_code == 400


def test_routes__refusals(client, outsider, api_client, two_versions):
    assert client.get(f"{ROUTES}orders/").status_code == 401
    assert outsider.get(f"{ROUTES}orders/").status_code == 403
    denied = api_client("router:read")
    allow_only("billing")
    response = denied.get(f"{ROUTES}orders/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_denied")


def test_root__lists_the_routes_and_the_websocket(reader):
    body = reader.get("/api/v1/router/").json()

    assert body["built"] is True and body["websocket"] == "/ws/router/"
    assert "/api/v1/router/routes/<str:name>/" in body["routes"]


def test_current_revision__read_before_a_change_cached_its_own__does_not_replace_it():
    # given a reader that finds no cached revision and reads 1 from the database, while a change
    # commits and caches revision 2 meanwhile
    from django.core.cache import cache

    cache.delete(common.revision_key("orders"))

    def read_then_changed(service):
        cache.set(common.revision_key(service), 2, timeout=60)
        return 1

    # when
    with mock.patch.object(common, "stored_revision", side_effect=read_then_changed):
        seen = common.current_revision("orders")
    # then the reader answers what it read, and the cache keeps the change's revision
    assert seen == 1
    assert cache.get(common.revision_key("orders")) == 2
