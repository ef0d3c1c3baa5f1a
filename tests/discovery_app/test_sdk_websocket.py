"""The SDK's websocket watch against a real ASGI server (uvicorn subprocess, its own SQLite file)."""

from __future__ import annotations

import time

import pytest

from platform_client.discovery import Discovery, Registration
from platform_client.session import PlatformSession
from tests.servers import asgi_platform


@pytest.fixture(scope="module")
def asgi(tmp_path_factory):
    with asgi_platform(tmp_path_factory.mktemp("discovery-asgi")) as platform:
        yield platform


def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_sdk__websocket_watch__keeps_the_cache_current(asgi):
    base, client_id, secret = asgi
    with PlatformSession(base, client_id, secret) as session:
        discovery = Discovery(session)
        seen = []
        try:
            # given a registered node, looked up once, and a watch callback
            with Registration(session, "orders", "1.0", "10.0.0.1", 8080, interval=5):
                discovery.get_service("orders")
                discovery.watch(seen.append, services=["orders"])
                eventually(lambda: discovery.mode == "websocket")
                time.sleep(0.3)  # the subscription reaches the server
                # when a second node registers
                with Registration(session, "orders", "1.0", "10.0.0.2", 8080, interval=5) as second:
                    # then the websocket brings it into the local cache, and to the callback
                    eventually(lambda: len(discovery.nodes("orders")) == 2)
                    eventually(lambda: any(r["node"]["id"] == second.node_id for r in seen))
                # and its deregistration too
                eventually(lambda: len(discovery.nodes("orders")) == 1)
        finally:
            watcher = discovery._thread
            discovery.close()
        assert not watcher.is_alive()  # it outlived close() by up to a second


def test_sdk__websocket_watch__last_node_gone__nodes_is_empty_then_refilled(asgi):
    base, client_id, secret = asgi
    with PlatformSession(base, client_id, secret) as session:
        discovery = Discovery(session)
        try:
            # given a watched service with one node
            with Registration(session, "payments", "1.0", "10.0.0.1", 8080, interval=5):
                assert len(discovery.nodes("payments")) == 1
                eventually(lambda: discovery.mode == "websocket")
                time.sleep(0.3)  # the subscription reaches the server
            # when its last node deregisters, then it has no nodes (not the platform's 404)
            eventually(lambda: discovery.nodes("payments") == [])
            # and a node registering again is pushed into the cache
            with Registration(session, "payments", "1.0", "10.0.0.2", 8080, interval=5):
                eventually(lambda: [n["address"] for n in discovery.nodes("payments")] == ["10.0.0.2"])
        finally:
            discovery.close()
