"""The Flask and FastAPI examples (examples/flask_service.py, examples/fastapi_service.py) run
against a live platform's tokens: refusals, a traced request, stats and metrics recorded; and
docs/sdk.md shows them exactly as they are."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from platform_client import Platform
from platform_client.session import PlatformSession

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("flask_service", "fastapi_service")
PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

pytestmark = pytest.mark.django_db(transaction=True)


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Buffered:
    """Flask's test client reading and closing each body, as a server does (spans end at close)."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, *args, **kwargs):
        return self.client.get(*args, buffered=True, **kwargs)

    def post(self, *args, **kwargs):
        return self.client.post(*args, buffered=True, **kwargs)


def client_for(name: str, p: Platform, provider: TracerProvider):
    app = load(name).create_app(p, tracer_provider=provider)
    if name == "flask_service":
        return Buffered(app.test_client())
    from starlette.testclient import TestClient

    return TestClient(app, raise_server_exceptions=True)


@pytest.fixture
def platform_and_tokens(live_server, service_account):
    """(a Platform as the service, a caller's token with events:read, one without it)."""
    tokens = {}
    for label, scopes in (("reader", ("events:read",)), ("other", ("config:read",))):
        client_id, secret = service_account(*scopes)
        session = PlatformSession(live_server.url, client_id, secret)
        tokens[label] = (session.credentials.token(), client_id)
        session.close()
    service_id, service_secret = service_account("auth:read", "monitor:write")
    with Platform(PlatformSession(live_server.url, service_id, service_secret), "orders") as p:
        yield p, tokens


@pytest.mark.parametrize("name", EXAMPLES)
def test_example__refuses_traces_and_counts(name, platform_and_tokens):
    p, tokens = platform_and_tokens
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = client_for(name, p, provider)
    (good, caller), (no_scope, _) = tokens["reader"], tokens["other"]

    missing = client.get("/orders/7")
    assert missing.status_code == 401
    assert json.loads(missing.text)["error"]["code"] == "not_authenticated"
    forged = client.get("/orders/7", headers={"Authorization": f"Bearer {good[:-4]}AAAA"})
    assert forged.status_code == 401
    assert client.get("/orders/7", headers={"Authorization": f"Bearer {no_scope}"}).status_code == 403

    traceparent = f"00-{PARENT_TRACE}-00f067aa0ba902b7-01"
    answer = client.get("/orders/7", headers={"Authorization": f"Bearer {good}", "traceparent": traceparent})
    assert answer.status_code == 200
    assert json.loads(answer.text) == {"id": 7, "caller": caller}
    assert client.post("/orders", headers={"Authorization": f"Bearer {good}"}).status_code == 201

    spans = exporter.get_finished_spans()
    assert len(spans) == 5  # refused calls are traced too
    traced = next(span for span in spans if span.context.trace_id == int(PARENT_TRACE, 16))
    assert traced.name == "GET /orders/7" and traced.attributes["http.response.status_code"] == 200

    counted = {entry["method"]: entry for entry in p.monitor.endpoints.take()}
    assert counted["GET /orders/7"]["success"] == 4 and counted["POST /orders"]["success"] == 1

    metrics = client.get("/metrics").text
    assert 'http_server_duration_seconds_count{method="GET",status="401"} 2.0' in metrics
    assert 'http_server_duration_seconds_count{method="GET",status="403"} 1.0' in metrics
    assert "orders_placed_total 1.0" in metrics


@pytest.mark.parametrize("name", EXAMPLES)
def test_docs_show_the_examples_as_they_are(name):
    source = (ROOT / "examples" / f"{name}.py").read_text()
    code = source.split('"""\n\n', 1)[1]  # after the module's docstring
    assert f"```python\n{code}```" in (ROOT / "docs" / "sdk.md").read_text()
