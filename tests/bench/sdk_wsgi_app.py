"""WSGI apps for the SDK middleware's overhead (served by ``tests.bench.sdk --middleware``).

``bare``: a handler answering a small JSON body.  ``wrapped``: the same behind
``platform_client.middleware.wsgi`` with authentication (an RS256 token checked against a key
made at start, as the platform's JWKS would give), the monitor's endpoint stats, request
metrics and an OpenTelemetry server span per request (spans go to a batch processor with an
exporter that drops them: the cost measured is the SDK's, not a collector's).
"""

from __future__ import annotations

import base64
import json
import os
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def bare(environ, start_response):
    body = b'{"ok": true}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


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


def _wrapped(traced: bool = True):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from platform_client.auth import JWKSVerifier
    from platform_client.metrics import Metrics
    from platform_client.middleware import wsgi
    from platform_client.monitor import Monitor
    from platform_client.session import PlatformSession

    class Drop(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    if traced:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)
    pem = os.environ["SDK_BENCH_KEY"].encode()
    key = serialization.load_pem_private_key(pem, password=None)
    verifier = JWKSVerifier("http://127.0.0.1:9/jwks")
    verifier._keys = {"bench": key.public_key()}
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "bench")
    return wsgi(
        bare,
        verifier=verifier,
        scopes=["config:read"],
        monitor=monitor,
        metrics=Metrics("bench"),
        trace=traced,
    )


wrapped = _wrapped() if os.environ.get("SDK_BENCH_KEY") else None
#: auth + stats + metrics, no span.
untraced = _wrapped(traced=False) if os.environ.get("SDK_BENCH_KEY") else None
