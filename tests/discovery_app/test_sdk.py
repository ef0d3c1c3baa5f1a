"""platform_client.discovery against a live platform (WSGI: the watch falls back to blocking queries)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from discovery_app import selectors, services
from discovery_app.models import Node
from platform_client.discovery import Discovery, Registration
from platform_client.session import PlatformError, PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(live_server, service_account):
    client_id, secret = service_account("discovery:read", "discovery:write")
    with PlatformSession(live_server.url, client_id, secret) as session:
        yield session


@pytest.fixture
def discovery(session):
    found = Discovery(session, use_websocket=False, wait_seconds=1.0, retry_seconds=0.5)
    yield found
    found.close()


def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_register__heartbeats_then_deregisters_on_exit(session):
    # when a service registers with a 1 s interval
    with Registration(session, "orders", "1.0", "10.0.0.1", 8080, {"zone": "eu"}, interval=1) as node:
        assert Node.objects.get(id=node.node_id).service.name == "orders"
        # then it heartbeats in the background
        eventually(lambda: selectors.last_heartbeats([node.node_id]).get(node.node_id, 0) > time.time() - 0.9)
    # and it is gone once the block ends
    assert not Node.objects.filter(id=node.node_id).exists()


def test_register__node_forgotten__registers_again(session):
    # given a registered node that the platform then forgets (expired and removed)
    registration = Registration(session, "orders", "1.0", "10.0.0.1", 8080, interval=60)
    registration.register()
    services.node_deregister(node_id=registration.node_id)
    # when it heartbeats
    registration.heartbeat()
    # then it got 404 node_not_registered and registered again
    assert registration.registrations == 2
    assert Node.objects.filter(id=registration.node_id).exists()
    registration.deregister()


def test_register__bad_input__raises_platform_error(session):
    with pytest.raises(PlatformError) as caught:
        Registration(session, "orders", "1.0", "not an address", 8080).start()
    assert caught.value.status == 400 and "address" in caught.value.details


def test_get_service__cached_lookup_makes_no_request(discovery, session, monkeypatch):
    # given a service looked up once
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
    first = discovery.get_service("orders")
    # when it is looked up again
    monkeypatch.setattr(session, "request", lambda *a, **k: pytest.fail("no request expected"))
    # then it comes from the local cache
    assert discovery.get_service("orders") is first
    assert [node["id"] for node in discovery.nodes("orders")] == ["a"]


def test_get_service__unknown__raises_404(discovery):
    with pytest.raises(PlatformError) as caught:
        discovery.get_service("nope")
    assert caught.value.status == 404


def test_nodes__watched_service_loses_its_last_node__empty_list_not_404(discovery, session, monkeypatch):
    # given a service looked up (so watched) with one node
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
    assert [node["id"] for node in discovery.nodes("orders")] == ["a"]
    # when its last node goes (the service record goes with it: the platform answers 404)
    services.node_deregister(node_id="a")
    # then it has no nodes, rather than raising the platform's 404
    eventually(lambda: discovery.nodes("orders") == [])
    with pytest.raises(PlatformError) as caught:  # get_service keeps the platform's answer
        discovery.get_service("orders")
    assert caught.value.status == 404
    with monkeypatch.context() as patched:  # from memory, no request each time
        patched.setattr(session, "request", lambda *a, **k: pytest.fail("no request expected"))
        assert discovery.nodes("orders") == [] and discovery.nodes("orders", version="1.0") == []
    # and a node registering again is seen
    services.node_register(node_id="b", service="orders", address="10.0.0.2", port=80)
    eventually(lambda: [node["id"] for node in discovery.nodes("orders")] == ["b"])


def test_nodes__never_registered__raises_404(discovery):
    with pytest.raises(PlatformError) as caught:
        discovery.nodes("nope")
    assert caught.value.status == 404


def test_get_service__kept_current_by_blocking_queries(discovery):
    # given a cached service
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
    discovery.get_service("orders")
    # when a node joins
    services.node_register(node_id="b", service="orders", address="10.0.0.2", port=80)
    # then the local cache follows
    eventually(lambda: len(discovery.nodes("orders")) == 2)
    assert discovery.mode == "blocking"


def test_get_service__platform_down__serves_the_stale_cache(discovery, session, monkeypatch):
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
    discovery.get_service("orders")

    def down(*args, **kwargs):
        raise httpx.ConnectError("platform unreachable")

    monkeypatch.setattr(session, "request", down)
    time.sleep(0.3)
    assert [node["id"] for node in discovery.nodes("orders")] == ["a"]


def test_watch__callback_gets_results(discovery):
    seen = []
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
    discovery.watch(seen.append, services=["orders"])
    discovery.get_service("orders")
    services.node_register(node_id="b", service="orders", address="10.0.0.2", port=80)
    eventually(lambda: any(result["node"]["id"] == "b" for result in seen))
    assert seen[-1]["action"] == "create"


def test_watch__websocket_unavailable__falls_back_to_blocking(session):
    # the live test server speaks WSGI only: no websocket there
    discovery = Discovery(session, use_websocket=True, wait_seconds=1.0, retry_seconds=30)
    try:
        services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)
        discovery.get_service("orders")
        services.node_register(node_id="b", service="orders", address="10.0.0.2", port=80)
        eventually(lambda: len(discovery.nodes("orders")) == 2)
        assert discovery.mode == "blocking"
    finally:
        discovery.close()


class _Beats(threading.Event):
    """A stop event that records each wait of the heartbeat loop and stops it after ``waits``."""

    def __init__(self, waits: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = waits

    def wait(self, timeout=None):
        self.waits.append(timeout)
        return len(self.waits) > self.limit


def test_heartbeat_loop__failures__tried_again_before_the_next_beat_then_the_interval_again():
    # given heartbeats answered 503 (Retry-After 2), then unreachable twice, then 200
    failures = [
        PlatformError(503, "unavailable", "Redis is down", retry_after=2.0),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
    ]
    beats = []

    class Session:
        def call(self, method, path, **kwargs):
            beats.append(method)
            if failures:
                raise failures.pop(0)
            return {}

    registration = Registration(Session(), "orders", "1.0", "10.0.0.1", 8080, interval=60)
    registration._stop = _Beats(waits=5)
    # when the loop runs
    registration._run()
    # then each retry came before the next beat: after the Retry-After, then after 0.5 s doubling
    # with each failure in a row (the second and third), less up to a fifth
    first, after_503, after_refused, after_refused_again, after_success, _ = registration._stop.waits
    assert first == 60
    assert after_503 == 2.0
    assert 0.8 <= after_refused <= 1.0
    assert 1.6 <= after_refused_again <= 2.0
    assert after_success == 60
    assert beats == ["POST"] * 5


def test_backoff__never_longer_than_its_maximum__nor_shorter_than_retry_after():
    from platform_client._backoff import Backoff

    backoff = Backoff(0.5, 3)
    assert backoff.next(retry_after=30.0) == 3
    assert [backoff.next() for _ in range(40)][-1] <= 3
    assert backoff.next(retry_after=2.9) >= 2.9
    backoff.reset()
    assert 0.4 <= backoff.next() <= 0.5
