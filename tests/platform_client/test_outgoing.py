"""Platform.client(service): a node picked through the router, the token attached, trace context
and labels propagated, the call's stats recorded; with httpx and with requests."""

from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from opentelemetry.sdk.trace import TracerProvider

from discovery_app import services as discovery
from platform_client import Platform
from platform_client.discovery import Discovery
from platform_client.session import PlatformSession
from router_app.models import StatsWindow

pytestmark = pytest.mark.django_db(transaction=True)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def echo(environ, start_response):
    headers = {
        key[5:].lower().replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")
    }
    body = json.dumps(headers).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def echo_node():
    server = make_server("127.0.0.1", 0, echo, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    discovery.node_register(node_id="echo-1", service="echo", address="127.0.0.1", port=server.server_port)
    yield
    server.shutdown()


@pytest.mark.parametrize("http", ["httpx", "requests"])
def test_client__token_trace_labels_and_stats(live_server, service_account, echo_node, http):
    client_id, secret = service_account("router:read", "router:report", "discovery:read")
    session = PlatformSession(live_server.url, client_id, secret)
    p = Platform(session, "checkout")
    p._made["discovery"] = Discovery(session, use_websocket=False, wait_seconds=1.0, retry_seconds=0.5)
    p._closers.append(p._made["discovery"].close)
    with p:
        client = p.client("echo", http, labels={"zone": "eu"})
        with TracerProvider().get_tracer("t").start_as_current_span("checkout") as span:
            response = client.request("GET", "/anything")
        seen = response.json()
        assert response.status_code == 200
        assert seen["authorization"] == f"Bearer {session.credentials.token()}"
        assert seen["traceparent"].split("-")[1] == format(span.get_span_context().trace_id, "032x")
        assert seen["x-micro-label-zone"] == "eu"
        assert p.router.flush(everything=True) == 1
    assert StatsWindow.objects.filter(caller="checkout", node="echo-1", requests=1, successes=1).exists()
