"""The SDK's one server middleware: authentication (401/403 in the error shape), the monitor's
endpoint stats and request metrics, for WSGI and ASGI apps, against a live platform's tokens."""

from __future__ import annotations

import asyncio
import json

import pytest

from platform_client import Platform
from platform_client.auth import AuthError, JWKSVerifier
from platform_client.metrics import Metrics
from platform_client.middleware import CachingVerifier, asgi, wsgi
from platform_client.monitor import Monitor
from platform_client.session import PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


def hello(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"boom"]
    claims = environ.get("platform.claims", {})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello {claims.get('client_id', 'anonymous')}".encode()]


async def hello_asgi(scope, receive, send):
    claims = scope.get("platform.claims", {})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"hello {claims.get('client_id')}".encode()})


@pytest.fixture
def tokens(live_server, service_account):
    """(verifier, token with config:read, token without it, the first account's id)."""
    made = []
    for scopes in (("config:read", "auth:read"), ("auth:read",)):
        client_id, secret = service_account(*scopes)
        session = PlatformSession(live_server.url, client_id, secret)
        made.append((session.credentials.token(), client_id))
        session.close()
    return JWKSVerifier(base_url=live_server.url), made[0][0], made[1][0], made[0][1]


def call(app, path="/", token=None):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return int(seen["status"][:3]), body


def test_wsgi__refusals_in_the_error_shape_and_stats_counted(tokens):
    verifier, good, no_scope, client_id = tokens
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    metrics = Metrics("orders")
    app = wsgi(hello, verifier=verifier, scopes=["config:read"], monitor=monitor, metrics=metrics)
    status, body = call(app)
    assert status == 401 and json.loads(body)["error"]["code"] == "not_authenticated"
    status, body = call(app, token=good[:-4] + "AAAA")
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_token"
    status, body = call(app, token=no_scope)
    assert status == 403 and json.loads(body)["error"]["code"] == "insufficient_scope"
    assert call(app, token=good) == (200, f"hello {client_id}".encode())
    assert call(app, path="/boom", token=good)[0] == 500
    assert call(app, path="/healthz")[0] == 200  # exempt
    counted = {entry["method"]: entry for entry in monitor.endpoints.take()}
    assert counted["GET /"]["success"] == 4 and counted["GET /boom"]["errors"] == 1
    text = metrics.render()[0].decode()
    assert 'http_server_duration_seconds_count{method="GET",status="401"} 2.0' in text
    assert 'http_server_duration_seconds_count{method="GET",status="200"} 2.0' in text
    monitor._pool.shutdown()


def test_caching_verifier__a_verified_token_is_checked_once_scopes_every_time(tokens):
    verifier, good, _, _ = tokens
    calls = []
    original = verifier.verify
    verifier.verify = lambda token, **kw: calls.append(token) or original(token, **kw)
    cached = CachingVerifier(verifier)
    cached.verify(good, scopes=["config:read"])
    cached.verify(good, scopes=["config:read"])
    assert calls == [good]
    with pytest.raises(AuthError) as raised:
        cached.verify(good, scopes=["config:write"])
    assert raised.value.status == 403
    with pytest.raises(AuthError):
        cached.verify("forged.token.value")
    assert "forged.token.value" not in cached._cache
    claims, _, granted = cached._cache[good]
    cached._cache[good] = (claims, 0.0, granted)  # expired: verified again
    cached.verify(good)
    assert calls == [good, "forged.token.value", good]


def test_asgi__authenticated_and_counted(tokens):
    verifier, good, no_scope, client_id = tokens
    monitor = Monitor(PlatformSession("http://127.0.0.1:9", "x", "y"), "orders")
    app = asgi(hello_asgi, verifier=verifier, scopes=["config:read"], monitor=monitor)

    def run(token):
        sent = []
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        return sent[0]["status"], sent[1]["body"]

    assert run(None)[0] == 401
    assert run(no_scope)[0] == 403
    assert run(good) == (200, f"hello {client_id}".encode())
    assert monitor.endpoints.take() == [{"method": "GET /", "success": 3, "errors": 0, "dropped": 0}]
    monitor._pool.shutdown()


def test_asgi__a_refused_websocket_is_accepted_then_closed_with_the_code(tokens):
    verifier, _, no_scope, _ = tokens
    app = asgi(hello_asgi, verifier=verifier, scopes=["config:read"])

    def run(token):
        sent = []
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []

        async def receive():
            return {"type": "websocket.connect"}

        async def send(message):
            sent.append(message)

        asyncio.run(app({"type": "websocket", "path": "/ws", "headers": headers}, receive, send))
        return [message.get("code", message["type"]) for message in sent]

    # a close code reaches a real client only after the accept (before it: an HTTP 403)
    assert run(None) == ["websocket.accept", 4401]
    assert run(no_scope) == ["websocket.accept", 4403]


def test_platform_wsgi__the_platforms_verifier_and_monitor(live_server, service_account, tokens):
    _, good, _, client_id = tokens
    reader_id, reader_secret = service_account("auth:read")
    with Platform(PlatformSession(live_server.url, reader_id, reader_secret), "orders") as p:
        app = p.wsgi(hello, scopes=("config:read",))
        assert call(app, token=good) == (200, f"hello {client_id}".encode())
        assert p.monitor.endpoints.take()[0]["success"] == 1
