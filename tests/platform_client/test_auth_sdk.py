"""platform_client.auth against a live platform: offline JWT checks, introspection, policy
checks, the WSGI/ASGI middlewares and the handler decorator."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import pytest
from django.test import RequestFactory

from auth_app.services import binding_create, role_create, rule_create
from platform_client.auth import (
    ASGIAuthMiddleware,
    AuthError,
    JWKSVerifier,
    WSGIAuthMiddleware,
    check,
    introspect,
    require,
)
from platform_client.session import PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platform(live_server, service_account):
    """(session, verifier) for a fresh service account holding config:read and auth:read."""
    client_id, secret = service_account("config:read", "auth:read")
    session = PlatformSession(live_server.url, client_id, secret)
    verifier = JWKSVerifier(base_url=live_server.url)
    yield session, verifier
    session.close()


def test_verifier__accepts_a_platform_token_offline(platform):
    session, verifier = platform
    claims = verifier.verify(session.credentials.token(), scopes=["config:read"])
    assert claims["client_id"] == session.credentials.client_id
    assert "config:read" in claims["scope"].split()


def test_verifier__missing_scope__is_403_error(platform):
    session, verifier = platform
    with pytest.raises(AuthError) as raised:
        verifier.verify(session.credentials.token(), scopes=["events:write"])
    assert (raised.value.status, raised.value.code) == (403, "insufficient_scope")


@pytest.mark.parametrize("mangle", ["garbage", "a.b", "x.y.z", "tamper", "alg-none"])
def test_verifier__malformed_or_forged_token__is_rejected(platform, mangle):
    session, verifier = platform
    token = session.credentials.token()
    head, payload, signature = token.split(".")
    if mangle == "tamper":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["scope"] = "admin"
        token = (
            f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')}.{signature}"
        )
    elif mangle == "alg-none":
        none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').decode().rstrip("=")
        token = f"{none}.{payload}."
    else:
        token = mangle
    with pytest.raises(AuthError) as raised:
        verifier.verify(token)
    assert raised.value.status == 401


def test_verifier__expired_token__is_rejected(platform):
    session, verifier = platform
    verifier.leeway = 0
    token = session.credentials.token()
    claims = verifier.verify(token)
    with pytest.raises(AuthError, match="expired"):
        original = time.time
        try:
            time.time = lambda: claims["exp"] + 1  # type: ignore[assignment]
            verifier.verify(token)
        finally:
            time.time = original  # type: ignore[assignment]


def test_verifier__wrong_audience_or_issuer__is_rejected(platform, live_server):
    session, _ = platform
    token = session.credentials.token()
    with pytest.raises(AuthError, match="audience"):
        JWKSVerifier(base_url=live_server.url, audience="someone-else").verify(token)
    with pytest.raises(AuthError, match="issued by someone else"):
        JWKSVerifier(base_url=live_server.url, issuer="https://other/o").verify(token)


def test_introspect__active_then_inactive_after_revocation(platform, live_server):
    session, _ = platform
    token = session.credentials.token()
    assert introspect(session, token)["active"] is True
    httpx.post(
        f"{live_server.url}/o/revoke_token/",
        data={"token": token},
        auth=(session.credentials.client_id, session.credentials.client_secret),
    )
    assert introspect(session, token) == {"active": False}


def test_check__asks_the_policy_engine(platform):
    session, _ = platform
    from auth_app.models import Account

    account = Account.objects.get(application__client_id=session.credentials.client_id)
    role = role_create(name="only-payments")
    rule_create(role=role, resource="config:payments/*", action="read")
    binding_create(role=role, account=account)
    assert check(session, "config:payments/prod", "read")["allowed"] is True
    assert check(session, "config:orders/prod", "read")["allowed"] is False


def test_wsgi_middleware__guards_a_plain_wsgi_app(platform):
    session, verifier = platform

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("platform.claims", {}).get("client_id", "open").encode()]

    guarded = WSGIAuthMiddleware(app, verifier, scopes=["config:read"])
    with httpx.Client(transport=httpx.WSGITransport(app=guarded), base_url="http://svc") as http:
        assert http.get("/thing").status_code == 401
        assert http.get("/healthz").status_code == 200
        ok = http.get("/thing", headers={"Authorization": f"Bearer {session.credentials.token()}"})
        assert ok.text == session.credentials.client_id
    strict = WSGIAuthMiddleware(app, verifier, scopes=["events:write"])
    with httpx.Client(transport=httpx.WSGITransport(app=strict), base_url="http://svc") as http:
        refused = http.get("/thing", headers={"Authorization": f"Bearer {session.credentials.token()}"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "insufficient_scope"


def test_asgi_middleware__guards_an_asgi_app(platform):
    session, verifier = platform

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["platform.claims"]["client_id"].encode()})

    guarded = ASGIAuthMiddleware(app, verifier)
    token = session.credentials.token()

    async def run():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=guarded), base_url="http://svc"
        ) as http:
            return (await http.get("/x")).status_code, (
                await http.get("/x", headers={"Authorization": f"Bearer {token}"})
            ).text

    refused, body = asyncio.run(run())
    assert refused == 401
    assert body == session.credentials.client_id


def test_require_decorator__on_a_django_view(platform):
    session, verifier = platform

    @require(verifier, "config:read")
    def view(request):
        from django.http import JsonResponse

        return JsonResponse({"caller": request.platform_claims["client_id"]})

    factory = RequestFactory()
    assert view(factory.get("/")).status_code == 401
    ok = view(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {session.credentials.token()}"))
    assert json.loads(ok.content) == {"caller": session.credentials.client_id}


def test_require_decorator__async_handler_and_unknown_framework(platform):
    session, verifier = platform

    class Req:
        def __init__(self, headers):
            self.headers = headers

    @require(verifier, "config:read")
    async def handler(request):
        return request.platform_claims["client_id"]

    token = session.credentials.token()
    assert asyncio.run(handler(Req({"authorization": f"Bearer {token}"}))) == session.credentials.client_id
    with pytest.raises(AuthError):
        asyncio.run(handler(Req({})))
