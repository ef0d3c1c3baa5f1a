"""Router(watch=True) against a real ASGI server: routes refreshed as /ws/router/ announces changes."""

from __future__ import annotations

import time

import pytest

from platform_client.discovery import Registration
from platform_client.router import Router
from platform_client.session import PlatformSession
from tests.servers import asgi_platform


@pytest.fixture(scope="module")
def asgi(tmp_path_factory):
    with asgi_platform(tmp_path_factory.mktemp("router-asgi")) as platform:
        yield platform


def eventually(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_watch__a_rule_written_reaches_the_selector_without_waiting_for_the_ttl(asgi):
    base, client_id, secret = asgi
    with PlatformSession(base, client_id, secret) as session:
        router = Router(session, caller="checkout", watch=True, publish=False)
        try:
            with Registration(session, "orders", "1.0", "10.0.0.1", 8080, interval=5):
                assert router.select("orders").address == "10.0.0.1"
                eventually(lambda: router.watcher.mode == "websocket")
                time.sleep(0.3)  # the subscription reaches the server
                refreshed_at = router._targets["orders"].refresh_at

                session.call(
                    "POST",
                    "/api/v1/router/rules/",
                    json={
                        "service": "orders",
                        "version": "1.0",
                        "key": "beta",
                        "value": "true",
                        "weight": 50,
                    },
                )

                eventually(lambda: router.watcher.changes.get("orders", 0) >= 1)
                eventually(lambda: [r["key"] for r in router._targets["orders"].table.rules] == ["beta"])
                assert router._targets["orders"].refresh_at > refreshed_at
        finally:
            router.close()
