"""router.client(service): select, call, record, retry; httpx and requests; 429 from the bucket."""

from __future__ import annotations

import random

import httpx
import pytest
import requests

from platform_client.router import Router
from tests.router_app.test_sdk import FakeDiscovery, FakeSession, routes


def make_router(rate_limit=None) -> Router:
    nodes = [("a", "1.0", 100, {}), ("b", "1.0", 100, {}), ("c", "1.0", 100, {})]
    session = FakeSession({"orders": routes(nodes, rate_limit=rate_limit)})
    for position, version in enumerate(session.routes["orders"]["versions"][0]["nodes"]):
        version["address"] = f"node-{'abc'[position]}"
    return Router(
        session, caller="checkout", discovery=FakeDiscovery({}), rand=random.Random(3).random, publish=False
    )


def test_client__calls_the_picked_node_with_the_labels_as_headers():
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("X-Micro-Label-beta")))
        return httpx.Response(200, json={"ok": True})

    router = make_router()
    client = router.client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    response = client.get("/orders/1", labels={"beta": "true"})

    assert response.status_code == 200
    assert seen[0][0] in {"node-a", "node-b", "node-c"} and seen[0][1] == "true"
    (recorded,) = router.recorder.closed(0, everything=True)
    assert (recorded["requests"], recorded["successes"]) == (1, 1)


def test_client__a_503_is_retried_on_another_node_and_both_calls_recorded():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(503 if len(calls) == 1 else 200)

    router = make_router()
    client = router.client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    assert client.get("/x").status_code == 200
    assert len(calls) == 2 and calls[0] != calls[1]
    windows = router.recorder.closed(0, everything=True)
    assert sum(w["requests"] for w in windows) == 2 and sum(w["errors"] for w in windows) == 1


def test_client__a_post_answered_503__is_not_retried():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503)

    client = make_router().client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    assert client.post("/x", json={}).status_code == 503 and len(calls) == 1


def test_client__connection_failures_are_retried_then_raised():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    router = make_router()
    client = router.client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    with pytest.raises(httpx.ConnectError):
        client.get("/x")
    assert sum(w["errors"] for w in router.recorder.closed(0, everything=True)) == 3


def test_client__connection_failures_once_the_retry_budget_is_spent_still_raise():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    router = make_router()
    client = router.client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    for _ in range(5):  # the budget (at least 3 retries) runs out after the first calls
        with pytest.raises(httpx.ConnectError):
            client.get("/x")


def test_client__retry_after_keeps_the_node_out():
    hosts = []

    def answer(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if len(hosts) == 1:
            return httpx.Response(429, headers={"Retry-After": "60"})
        return httpx.Response(200)

    client = make_router().client("orders", httpx.Client(transport=httpx.MockTransport(answer)))
    client.get("/x")
    for _ in range(50):
        client.get("/x")

    assert hosts[0] not in hosts[2:]


def test_client__the_rate_limit_answers_429_with_retry_after():
    client = make_router(rate_limit={"rate": 0.5, "burst": 1}).client(
        "orders", httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    )

    assert client.get("/x").status_code == 200
    refused = client.get("/x")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["error"]["code"] == "rate_limited"


def test_client__a_retry_the_rate_limit_refuses__the_call_raises_its_own_error():
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = make_router(rate_limit={"rate": 0.001, "burst": 1}).client(
        "orders", httpx.Client(transport=httpx.MockTransport(answer))
    )

    with pytest.raises(httpx.ConnectError):  # not the local 429 of the retry
        client.get("/x")


class Adapter(requests.adapters.BaseAdapter):
    """A requests transport answering from a function."""

    def __init__(self, answer) -> None:
        super().__init__()
        self.answer = answer

    def send(self, request, **kwargs):
        response = requests.Response()
        response.status_code = self.answer(request)
        response.request, response.url = request, request.url
        response._content = b"{}"
        return response

    def close(self) -> None:
        pass


def test_client__wraps_requests_too():
    urls = []
    session = requests.Session()
    session.mount(
        "http://", Adapter(lambda request: urls.append(request.url) or (500 if len(urls) == 1 else 200))
    )
    router = make_router(rate_limit={"rate": 0.1, "burst": 2})
    client = router.client("orders", session)

    assert client.get("/y").status_code == 200
    assert len(urls) == 2 and urls[0] != urls[1]
    refused = client.get("/y")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert isinstance(refused, requests.Response)


def test_client__a_timeout_is_recorded_as_one_and_retried_for_a_get():
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200)

    router = make_router()
    client = router.client("orders", httpx.Client(transport=httpx.MockTransport(answer)))

    assert client.get("/x").status_code == 200
    windows = router.recorder.closed(0, everything=True)
    assert sum(w["timeouts"] for w in windows) == 1 and sum(w["successes"] for w in windows) == 1
    assert calls[0] != calls[1]
