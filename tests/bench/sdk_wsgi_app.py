"""WSGI apps for the SDK middleware's overhead (served by ``tests.bench.sdk_middleware``).

``application`` is the arm named by ``$SDK_BENCH_ARM``:

- ``bare``: a handler answering a small JSON body;
- ``floor``: the least a middleware that authenticates by a remembered token and records each
  request's status and duration can do in Python (two clock reads, a ``start_response`` wrapper,
  one dictionary lookup, one queue append, nothing counted): what no such middleware can go under;
- ``auth_stats``: the same behind ``platform_client.middleware.wsgi`` with authentication (an
  RS256 token checked against a key made at start, as the platform's JWKS would give; verified
  once, then cached), the monitor's endpoint counts and a request-duration histogram;
- ``sampled``: that plus the SDK's server span (``platform_client.server_span``), every request
  sampled, spans batched by a ``BatchSpanProcessor`` to an exporter that drops them;
- ``sampled_otlp``: the same, the batches encoded and sent over OTLP/HTTP to
  ``$SDK_BENCH_OTLP`` (a sink answering 200): the export's whole cost, in its own thread;
- ``unsampled``: the server span with a sampler at ratio 0 (``ParentBased``: requests without a
  sampled parent are not recorded);
- ``sampled_10``: the server span with a sampler at ratio 0.1 (one new trace in ten recorded),
  spans dropped as ``sampled``: the average cost of a service sampling a tenth of its traffic;
- ``otel_instrumentation``: auth + stats with opentelemetry-instrumentation-wsgi's middleware
  instead (what the SDK used before), sampled and dropped as ``sampled``.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import deque
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ARMS = (
    "bare",
    "floor",
    "auth_stats",
    "sampled",
    "sampled_otlp",
    "sampled_10",
    "unsampled",
    "otel_instrumentation",
)


def bare(environ, start_response):
    body = b'{"ok": true}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def floor(accepted: dict) -> Callable:
    queue: deque = deque(maxlen=1_000_000)
    perf_counter = time.perf_counter

    def app(environ, start_response):
        started = perf_counter()
        path = environ.get("PATH_INFO", "")
        status = None

        def recording_start_response(status_line, headers, exc_info=None):
            nonlocal status
            status = status_line
            return start_response(status_line, headers, exc_info)

        entry = accepted.get(environ.get("HTTP_AUTHORIZATION"))
        if entry is not None and entry[1] >= started:
            environ["claims"] = entry[0]
        body = bare(environ, recording_start_response)
        queue.append((environ.get("REQUEST_METHOD", ""), status, perf_counter() - started, path))
        if len(queue) > 100_000:  # what a counting thread would take away
            queue.clear()
        return body

    return app


def sink(environ, start_response):
    """The OTLP/HTTP collector of ``sampled_otlp``: reads each batch, answers 200."""
    stream, left = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)
    start_response("200 OK", [("Content-Type", "application/x-protobuf"), ("Content-Length", "0")])
    return [b""]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(key: rsa.RSAPrivateKey, kid: str = "bench") -> str:
    header = _b64(json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}).encode())
    claims = {
        "aud": "micro-platform",
        "exp": int(time.time()) + 3600,
        "scope": "config:read",
        "client_id": "b",
    }
    payload = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def _tracing(arm: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    exporter: SpanExporter = Drop()
    if arm == "sampled_otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=os.environ["SDK_BENCH_OTLP"])
    ratio = {"unsampled": 0.0, "sampled_10": 0.1}.get(arm, 1.0)
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def make(arm: str):
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}: one of {', '.join(ARMS)}")
    if arm == "bare":
        return bare
    if arm == "floor":
        return floor({f"Bearer {os.environ.get('SDK_BENCH_TOKEN', '')}": ({}, float("inf"))})
    from platform_client.auth import JWKSVerifier
    from platform_client.metrics import Metrics
    from platform_client.middleware import wsgi
    from platform_client.monitor import Monitor
    from platform_client.session import PlatformSession

    traced = arm in ("sampled", "sampled_otlp", "sampled_10", "unsampled")
    if traced or arm == "otel_instrumentation":
        _tracing(arm)
    key = serialization.load_pem_private_key(os.environ["SDK_BENCH_KEY"].encode(), password=None)
    verifier = JWKSVerifier("http://127.0.0.1:9/jwks")
    verifier._keys = {"bench": key.public_key()}
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "bench")  # counts kept in memory
    app = wsgi(
        bare,
        verifier=verifier,
        scopes=["config:read"],
        monitor=monitor,
        metrics=Metrics("bench"),
        trace=traced,
    )
    if arm == "otel_instrumentation":
        from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

        app = OpenTelemetryMiddleware(app)
    return app


application = make(os.environ["SDK_BENCH_ARM"]) if os.environ.get("SDK_BENCH_ARM") else None
