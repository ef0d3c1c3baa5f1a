"""The SDK selector against a live platform: routes with weights, stats published, router refused."""

from __future__ import annotations

import time

import pytest

from discovery_app import services as discovery
from platform_client.discovery import Discovery
from platform_client.router import Router
from platform_client.session import PlatformSession
from router_app import services
from router_app.models import StatsWindow

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def nodes():
    for number in range(3):
        discovery.node_register(
            node_id=f"orders-{number}", service="orders", address="10.0.0.1", port=8000 + number
        )


def router_for(live_server, service_account, *scopes):
    client_id, secret = service_account(*scopes)
    session = PlatformSession(live_server.url, client_id, secret)
    found = Discovery(session, use_websocket=False, wait_seconds=1.0, retry_seconds=0.5)
    return Router(session, caller="checkout", discovery=found, publish=False), session, found


def test_routes_and_stats__round_trip(live_server, service_account, nodes):
    services.stats_ingest(
        caller="x",
        windows=[
            {"service": "orders", "node": "orders-0", "start": int(time.time()) - 5, "requests": 10,
             "successes": 0, "errors": 10, "consecutive_5xx": 10}
        ],
        now=time.time(),
    )  # fmt: skip
    services.service_evaluate(service="orders", now=time.time())
    router, session, found = router_for(live_server, service_account, "router:read", "router:report")
    try:
        picked = {router.select("orders").id for _ in range(300)}
        assert picked == {"orders-1", "orders-2"}  # orders-0 is ejected by consecutive_5xx
        assert router.source("orders") == "router"
        node = router.select("orders")
        router.mark(node, ok=True, latency_ms=3.0)
        assert router.flush(everything=True) == 1
        assert StatsWindow.objects.filter(caller="checkout", node=node.id, requests=1).exists()
    finally:
        found.close()
        session.close()


def test_router_refusing__the_discovery_cache_serves(live_server, service_account, nodes):
    # a token without router:read: every routes call is refused, discovery still answers
    router, session, found = router_for(live_server, service_account, "discovery:read")
    try:
        picked = [router.select("orders").id for _ in range(1000)]
        assert len(picked) == 1000 and set(picked) == {"orders-0", "orders-1", "orders-2"}
        assert router.source("orders") == "discovery"
    finally:
        found.close()
        session.close()
