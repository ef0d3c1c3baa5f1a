"""The SDK's server span (platform_client.server_span, made with the OpenTelemetry API, no
instrumentation package) and the request stats counted in the background."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode, get_current_span

from platform_client import server_span
from platform_client.metrics import Metrics
from platform_client.middleware import RequestStats, wsgi
from platform_client.monitor import Monitor
from platform_client.session import PlatformSession

PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def handler(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise RuntimeError("handler failed")
    current = get_current_span().get_span_context()
    status = "503 Service Unavailable" if environ["PATH_INFO"] == "/down" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [f"{current.trace_id:032x}".encode()]


def streaming(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield f"{get_current_span().get_span_context().span_id:016x}".encode()

    return body()


def call(app, path="/", **headers):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.url_scheme": "http", "QUERY_STRING": ""}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    return int(seen["status"][:3]), data


def test_span__the_required_attributes_and_the_remote_parent(spans):
    provider, exporter = spans
    app = server_span.wsgi(handler, tracer_provider=provider)
    status, body = call(app, traceparent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01", tracestate="vendor=1")
    assert status == 200 and body.decode() == PARENT_TRACE  # the handler ran inside the span
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.name == "GET /"
    assert dict(span.attributes) == {
        "http.request.method": "GET",
        "url.path": "/",
        "url.scheme": "http",
        "http.response.status_code": 200,
    }
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE
    assert f"{span.parent.span_id:016x}" == PARENT_SPAN and span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "1"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"00-{'0' * 32}-{PARENT_SPAN}-01",  # all-zero trace id
        f"ff-{PARENT_TRACE}-{PARENT_SPAN}-01",  # version ff is invalid
        f"00-{PARENT_TRACE.upper()}-{PARENT_SPAN}-01",  # upper-case hex
        f"00-{PARENT_TRACE}-{PARENT_SPAN}-01-extra",  # version 00 has no more fields
    ],
)
def test_span__an_invalid_traceparent_starts_a_new_trace(spans, header):
    provider, exporter = spans
    call(server_span.wsgi(handler, tracer_provider=provider), traceparent=header)
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and f"{span.context.trace_id:032x}" != PARENT_TRACE


def test_span__b3_headers_through_the_global_propagator(spans):
    from opentelemetry import propagate
    from opentelemetry.propagators.b3 import B3MultiFormat

    provider, exporter = spans
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(B3MultiFormat())
    try:
        call(
            server_span.wsgi(handler, tracer_provider=provider),
            x_b3_traceid=PARENT_TRACE,
            x_b3_spanid=PARENT_SPAN,
            x_b3_sampled="1",
        )
    finally:
        propagate.set_global_textmap(previous)
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE


def test_span__errors_other_methods_routes_and_queries(spans):
    provider, exporter = spans
    app = server_span.wsgi(handler, tracer_provider=provider, route=lambda environ: "/items/{id}")
    assert call(app, "/down")[0] == 503
    with pytest.raises(RuntimeError):
        call(app, "/raise")
    environ = {
        "REQUEST_METHOD": "BREW",
        "PATH_INFO": "/pot",
        "wsgi.url_scheme": "https",
        "QUERY_STRING": "a=1",
    }
    app(environ, lambda status, headers, exc_info=None: None)
    down, raised, brew = exporter.get_finished_spans()
    assert down.status.status_code is StatusCode.ERROR and down.attributes["error.type"] == "503"
    assert down.name == "GET /items/{id}" and down.attributes["http.route"] == "/items/{id}"
    assert raised.status.status_code is StatusCode.ERROR and raised.attributes["error.type"] == "RuntimeError"
    assert "http.response.status_code" not in raised.attributes  # nothing was sent
    assert brew.attributes["http.request.method"] == "_OTHER"
    assert brew.attributes["http.request.method_original"] == "BREW"
    assert brew.attributes["url.query"] == "a=1" and brew.attributes["url.scheme"] == "https"


def test_span__a_streamed_body_is_inside_the_span_which_ends_at_close(spans):
    provider, exporter = spans
    _, body = call(server_span.wsgi(streaming, tracer_provider=provider))
    (span,) = exporter.get_finished_spans()
    assert body.decode() == f"{span.context.span_id:016x}"


def test_span__unsampled_requests_are_not_recorded_a_sampled_parent_is(spans):
    _, exporter = spans
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = server_span.wsgi(handler, tracer_provider=provider)
    _, body = call(app)
    assert exporter.get_finished_spans() == () and body != b"0" * 32  # a trace id all the same
    call(app, traceparent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-01")
    call(app, traceparent=f"00-{PARENT_TRACE}-{PARENT_SPAN}-00")
    (span,) = exporter.get_finished_spans()
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE


def test_asgi_span(spans):
    provider, exporter = spans

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    traced = server_span.asgi(app, tracer_provider=provider)
    headers = [(b"traceparent", f"00-{PARENT_TRACE}-{PARENT_SPAN}-01".encode())]
    scope = {"type": "http", "method": "POST", "path": "/orders", "scheme": "http", "headers": headers}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    asyncio.run(traced(scope, receive, send))
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /orders" and span.attributes["http.response.status_code"] == 201
    assert f"{span.context.trace_id:032x}" == PARENT_TRACE


def test_span__health_and_metrics_paths_are_not_traced_but_counted(spans):
    provider, exporter = spans
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    app = wsgi(handler, trace=True, tracer_provider=provider, monitor=monitor)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert call(app, path=path)[0] == 200
    assert exporter.get_finished_spans() == ()
    counted = {row["method"]: row["success"] for row in monitor.endpoints.take()}
    assert counted == {"GET /healthz": 1, "GET /readyz": 1, "GET /metrics": 1}
    call(server_span.wsgi(handler, tracer_provider=provider, exempt_paths=()), path="/healthz")
    assert [span.name for span in exporter.get_finished_spans()] == ["GET /healthz"]


def test_asgi_span__health_paths_are_not_traced(spans):
    provider, exporter = spans
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        pass

    traced = server_span.asgi(app, tracer_provider=provider)
    for path in ("/healthz", "/orders"):
        asyncio.run(traced({"type": "http", "method": "GET", "path": path, "headers": []}, None, send))
    assert seen == ["/healthz", "/orders"]
    assert [span.name for span in exporter.get_finished_spans()] == ["GET /orders"]


def test_request_stats__counted_in_the_background_and_before_each_read():
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    metrics = Metrics("orders")
    app = wsgi(handler, monitor=monitor, metrics=metrics)
    for _ in range(3):
        call(app)
    call(app, "/down")
    assert len(app.stats.queue) == 4  # nothing counted on the request's thread
    text = metrics.render()[0].decode()  # the exposition counts what is queued first
    assert 'http_server_duration_seconds_count{method="GET",status="200"} 3.0' in text
    assert 'http_server_duration_seconds_count{method="GET",status="503"} 1.0' in text
    call(app)
    counts = {entry["method"]: entry for entry in monitor.endpoints.take()}
    assert counts["GET /"]["success"] == 4 and counts["GET /down"]["errors"] == 1
    call(app)
    deadline = time.monotonic() + 10
    while app.stats.queue and time.monotonic() < deadline:  # the thread's flush
        time.sleep(0.05)
    assert not app.stats.queue and monitor.endpoints.take()[0]["success"] == 1
    app.stats.close()
    monitor._pool.shutdown()


def generator_app(environ, start_response):
    """A generator WSGI app: start_response is called at the first item, not before it returns."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield f"{get_current_span().get_span_context().span_id:016x}".encode()
    if environ["PATH_INFO"] == "/broken":
        raise RuntimeError("the stream broke")


def test_request_stats_and_span__a_generator_app_is_counted_and_ended_at_close(spans):
    provider, exporter = spans
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    app = wsgi(generator_app, monitor=monitor, trace=True, tracer_provider=provider)
    status, body = call(app)
    with pytest.raises(RuntimeError):
        call(app, "/broken")
    app.stats.flush()
    counts = {entry["method"]: entry for entry in monitor.endpoints.take()}
    assert (status, counts["GET /"]["success"], counts["GET /"]["errors"]) == (200, 1, 0)
    assert counts["GET /broken"]["errors"] == 1  # the status was 200, then the body failed
    good, broken = exporter.get_finished_spans()
    assert body.decode() == f"{good.context.span_id:016x}"
    assert good.attributes["http.response.status_code"] == 200 and good.status.status_code != StatusCode.ERROR
    assert broken.status.status_code == StatusCode.ERROR and broken.attributes["error.type"] == "RuntimeError"
    app.stats.close()
    monitor._pool.shutdown()


def test_request_stats__a_forked_child_starts_its_own_thread():
    stats = RequestStats(None, None, interval=3600)  # only explicit flushes here
    stats.record("GET /", "GET", 200, 0.001)
    pid = os.fork()
    if pid == 0:  # the child: the parent's queue is not counted twice, a new thread counts
        ok = not stats.queue and not stats._started
        stats.record("GET /", "GET", 200, 0.001)
        ok = ok and stats._started
        os._exit(0 if ok else 1)
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0
    assert stats.flush() == 1
    stats.close()


def test_request_stats__durations_counted_per_bucket_as_one_by_one_observations():
    from platform_client.middleware import _observe_all

    values = [0.0, 0.005, 0.0051, 0.3, 2.5, 99.0] * 50
    bulk, single = Metrics("a"), Metrics("b")
    _observe_all(bulk.histogram("d", "d", labels=("k",)).labels(k="1"), values)
    one_by_one = single.histogram("d", "d", labels=("k",)).labels(k="1")
    for value in values:
        one_by_one.observe(value)

    def samples(metrics):
        lines = metrics.render()[0].decode().splitlines()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("d_")
        }

    got, expected = samples(bulk), samples(single)
    assert {k: v for k, v in got.items() if "_created" not in k and "_sum" not in k} == {
        k: v for k, v in expected.items() if "_created" not in k and "_sum" not in k
    }
    assert got['d_bucket{k="1",le="0.005"}'] == 100 and got['d_count{k="1"}'] == 300
    assert got['d_sum{k="1"}'] == pytest.approx(expected['d_sum{k="1"}'])


def test_request_stats__a_status_line_without_a_code_and_no_answer_count_as_errors():
    """The status line is read when counted, not on the request's thread: one without a code, or
    an app that never called start_response, is an error there, and the rest is still counted."""

    def odd(environ, start_response):
        if environ["PATH_INFO"] == "/odd":
            start_response("OK", [])
        return [b""]

    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    metrics = Metrics("orders")
    app = wsgi(odd, monitor=monitor, metrics=metrics)
    for path in ("/odd", "/silent"):
        app({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda status, headers, exc_info=None: None)
    assert app.stats.flush() == 2
    counts = {entry["method"]: entry for entry in monitor.endpoints.take()}
    assert counts["GET /odd"]["errors"] == 1 and counts["GET /silent"]["errors"] == 1
    text = metrics.render()[0].decode()
    assert 'http_server_duration_seconds_count{method="GET",status="500"} 2.0' in text
    app.stats.close()
    monitor._pool.shutdown()
