"""The platform tracing itself: a span per sampled request, full stack and hot path, never for
trace ingest, stored through ingest (no HTTP)."""

from __future__ import annotations

import pytest

from discovery_app import hot
from discovery_app.services import node_register
from platformsite import observers
from tests.hotpath import Driver
from tests.trace_app.conftest import hex_id, otlp_request, post_otlp
from trace_app.models import Span
from trace_app.selftrace import SelfTracer

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracer(settings):
    settings.PLATFORM_SELF_TRACE_RATIO = 0.0  # only requests whose traceparent says sampled
    made = SelfTracer()
    observers.add(made.observe)
    yield made
    observers.remove(made.observe)


def traceparent(trace: str, parent: str, sampled: bool = True) -> str:
    return f"00-{trace}-{parent}-{'01' if sampled else '00'}"


def test_a_sampled_request__continues_the_callers_trace(tracer, api_client):
    trace, parent = hex_id(16), hex_id(8)
    reader = api_client("trace:read")
    assert (
        reader.get("/api/v1/trace/services/", HTTP_TRACEPARENT=traceparent(trace, parent)).status_code == 200
    )
    assert (
        reader.get(
            "/api/v1/trace/services/", HTTP_TRACEPARENT=traceparent(hex_id(16), parent, False)
        ).status_code
        == 200
    )
    reader.get("/api/v1/trace/services/")  # no traceparent, ratio 0: not traced
    assert tracer.flush() == 1
    span = Span.objects.get()
    assert (span.trace_id, span.parent_id, span.kind, span.service) == (
        trace,
        parent,
        "SERVER",
        "micro-platform",
    )
    assert span.name == "GET /api/v1/trace/services/" and span.tags["http.response.status_code"] == "200"


def test_every_request_at_ratio_one__errors_marked(tracer, settings, client):
    settings.PLATFORM_SELF_TRACE_RATIO = 1.0
    client.get("/api/v1/trace/traces/")  # 401
    tracer.flush()
    span = Span.objects.get()
    assert span.tags["http.response.status_code"] == "401" and not span.error


def test_hot_path_requests_are_traced_too(tracer, issue_token, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        node_register(node_id="orders-1", service="orders", version="1.0", address="10.0.0.1", port=80)
    driver = Driver(hot.ROUTES)
    token = issue_token("discovery:read")
    trace = hex_id(16)
    sampled = {"traceparent": traceparent(trace, hex_id(8))}
    replies = driver.warm("GET", "/api/v1/discovery/services/orders/", token, headers=sampled)
    assert replies[1].hot
    tracer.flush()
    assert Span.objects.filter(trace_id=trace, name="GET /api/v1/discovery/services/<str:name>/").count() == 2


def test_trace_ingest_is_never_traced(tracer, api_client):
    writer = api_client("trace:write")
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    post_otlp(writer, request, HTTP_TRACEPARENT=traceparent(hex_id(16), hex_id(8)))
    assert tracer.flush() == 0
    assert Span.objects.count() == 1  # the ingested span only


def test_health_and_metrics_requests_are_not_traced(tracer, settings, client):
    settings.PLATFORM_SELF_TRACE_RATIO = 1.0
    for path in ("/healthz", "/readyz", "/metrics"):
        client.get(path)
    assert tracer.flush() == 0
