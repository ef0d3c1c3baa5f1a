"""Discovery's ?passing=true leaves out the nodes the monitor sees failing (a cached selector)."""

from __future__ import annotations

import pytest

from discovery_app import services as discovery
from monitor_app import selectors
from tests.monitor_app.conftest import result

pytestmark = pytest.mark.django_db
FAST = {"failures_before_critical": 1, "success_before_passing": 1}


@pytest.fixture
def nodes(committed):
    with committed():
        for node_id in ("orders-1", "orders-2"):
            discovery.node_register(
                node_id=node_id,
                service="orders",
                version="1.0",
                address="10.0.0.1",
                port=8000,
                now=1_800_000_000.0,
            )


def passing_ids(client) -> list[str]:
    response = client.get("/api/v1/discovery/services/orders/?passing=true")
    assert response.status_code == 200, response.content
    return [node["id"] for version in response.json()["versions"] for node in version["nodes"]]


def test_passing__a_node_with_a_critical_check_down__left_out(api_client, nodes, report, settings):
    settings.MONITOR_HEALTH_CACHE_SECONDS = 0
    client = api_client("discovery:read")
    report("orders", "orders-1", result("db", "passing", **FAST))
    report("orders", "orders-2", result("db", "passing", **FAST))
    assert passing_ids(client) == ["orders-1", "orders-2"]

    report("orders", "orders-2", result("db", "critical", **FAST), now=1_800_000_010.0)
    assert passing_ids(client) == ["orders-1"]
    # without ?passing the node is still listed
    everyone = client.get("/api/v1/discovery/services/orders/").json()
    assert len(everyone["versions"][0]["nodes"]) == 2


def test_passing__a_non_critical_check_down__still_passing(api_client, nodes, report, settings):
    settings.MONITOR_HEALTH_CACHE_SECONDS = 0
    report("orders", "orders-2", result("cache", "critical", critical=False, **FAST))

    assert passing_ids(api_client("discovery:read")) == ["orders-1", "orders-2"]


def test_failing_nodes__cached_in_the_process(report, django_assert_num_queries, settings):
    settings.MONITOR_HEALTH_CACHE_SECONDS = 60
    report("orders", "orders-2", result("db", "critical", **FAST))
    assert selectors.failing_nodes("orders") == {"orders-2"}

    with django_assert_num_queries(0):
        assert selectors.failing_nodes("orders") == {"orders-2"}


def test_failing_nodes__a_lost_shared_cache_is_whole_again_after_the_loop(report, settings, committed):
    settings.MONITOR_HEALTH_CACHE_SECONDS = 0
    report("orders", "orders-2", result("db", "critical", **FAST))
    selectors.cache.clear()  # the shared cache restarted
    assert selectors.failing_nodes("orders") == frozenset()

    with committed():
        from monitor_app import services

        services.monitor_tick(now=1_800_000_001.0)
    assert selectors.failing_nodes("orders") == {"orders-2"}
