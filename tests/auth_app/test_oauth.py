"""OAuth2 endpoints: JWT access tokens and JWKS, introspection, throttling, metadata, 405s (the
authorization code flow: test_authorize.py)."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.cache import cache
from jwcrypto import jwk, jwt

from auth_app import keys
from auth_app.services import service_account_create, user_account_create
from auth_app.tokens import REVOCATION_EPOCH_KEY
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db


def get_token(client, client_id, secret, **extra):
    data = {"grant_type": "client_credentials", **extra}
    return client.post("/o/token/", data, HTTP_AUTHORIZATION=basic_auth(client_id, secret))


def verify_with_jwks(client, token: str) -> dict:
    keyset = jwk.JWKSet.from_json(client.get("/o/.well-known/jwks.json").content)
    return json.loads(jwt.JWT(jwt=token, key=keyset, algs=["RS256"]).claims)


def test_access_token__is_an_rfc9068_jwt_verifiable_with_the_jwks(client, service_account):
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256"
    claims = verify_with_jwks(client, token)
    assert claims["client_id"] == client_id
    assert claims["sub"] == client_id
    assert claims["scope"] == "config:read"
    assert claims["iss"] == "http://testserver/o"
    assert claims["aud"] == "micro-platform"
    assert claims["exp"] - claims["iat"] == 3600


def test_jwt__tampered_signature__fails_verification(client, service_account):
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    head, payload, signature = token.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Exception, match=r"(?i)verif|signature|missing key"):
        verify_with_jwks(client, f"{head}.{forged}.{signature}")
    # and the platform does not accept it either
    assert (
        client.get("/api/v1/config/", HTTP_AUTHORIZATION=f"Bearer {head}.{forged}.{signature}").status_code
        == 401
    )


def test_key_rotation__old_tokens_still_verify_and_new_ones_use_the_new_key(client, service_account):
    client_id, secret = service_account("config:read")
    old = get_token(client, client_id, secret).json()["access_token"]
    # when
    new_key = keys.signing_key_create()
    new = get_token(client, client_id, secret).json()["access_token"]
    # then
    published = {key["kid"] for key in client.get("/o/.well-known/jwks.json").json()["keys"]}
    assert len(published) == 2 and new_key.kid in published
    verify_with_jwks(client, old)
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == new_key.kid
    assert client.get("/api/v1/config/", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 200


def test_rotate_task__rotates_only_when_due(settings):
    from auth_app.tasks import rotate_signing_key_if_due

    first = keys.signing_key_create()
    rotate_signing_key_if_due.delay()
    assert keys.current_signing_key()[0] == first.kid
    settings.PLATFORM_SIGNING_KEY_DAYS = 0
    rotate_signing_key_if_due.delay()
    assert keys.current_signing_key()[0] != first.kid


def test_keys_api__rotation_needs_admin(api_client):
    assert api_client("auth:read", "auth:write").post("/api/v1/auth/keys/").status_code == 403
    assert api_client("admin").post("/api/v1/auth/keys/").status_code == 201
    assert len(api_client("auth:read").get("/api/v1/auth/keys/").json()["keys"]) >= 1


def test_opaque_format__issues_random_tokens(client, service_account, settings):
    settings.PLATFORM_ACCESS_TOKEN_FORMAT = "opaque"
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    assert token.count(".") == 0
    assert client.get("/api/v1/config/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_introspection__with_client_credentials(client, service_account):
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    response = client.post(
        "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=basic_auth(client_id, secret)
    )
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "config:read"
    assert body["client_id"] == client_id
    assert body["sub"] == client_id
    assert body["exp"] > 0


def test_introspection__with_a_bearer_holding_auth_read(client, issue_token, service_account):
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    reader = issue_token("auth:read")
    body = client.post("/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=f"Bearer {reader}").json()
    assert body["active"] is True
    outsider = issue_token("config:read")
    refused = client.post("/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=f"Bearer {outsider}")
    assert refused.status_code == 403


def test_introspection__unknown_or_revoked_token__is_inactive(client, service_account):
    client_id, secret = service_account("config:read")
    auth = basic_auth(client_id, secret)
    assert client.post("/o/introspect/", {"token": "nope"}, HTTP_AUTHORIZATION=auth).json() == {
        "active": False
    }
    token = get_token(client, client_id, secret).json()["access_token"]
    client.post("/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert client.post("/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=auth).json() == {
        "active": False
    }


@pytest.mark.parametrize("header", [None, "Basic bm9wZTpub3Bl", "Basic !!!", "Bearer nope"])
def test_introspection__unauthenticated_caller__is_401(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post("/o/introspect/", {"token": "x"}, **extra)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response or header == "Bearer nope"


def test_introspection__missing_token_parameter__is_400(client, service_account):
    client_id, secret = service_account("config:read")
    response = client.post("/o/introspect/", {}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_token_endpoint__repeated_wrong_secrets__are_throttled(client, service_account, settings):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    statuses = [get_token(client, client_id, "wrong").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # even the right secret waits now, so guessing cannot continue from this address
    throttled = get_token(client, client_id, secret)
    assert throttled.status_code == 429
    assert throttled["Retry-After"] == "300"


def test_token_endpoint__stale_refresh_tokens_of_an_authenticated_client__do_not_lock_the_address(
    client, service_account, settings
):
    # a confidential client retrying a stale refresh token (400 invalid_grant) counted as a failed
    # authentication: 20 of them locked every client of its address out of /o/token/ (429)
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    auth = basic_auth(client_id, secret)
    stale = {"grant_type": "refresh_token", "refresh_token": "stale"}
    statuses = [client.post("/o/token/", stale, HTTP_AUTHORIZATION=auth).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 400]
    assert get_token(client, client_id, secret).status_code == 200
    # a client proving no secret (a public one) may be guessing: its invalid grants still count
    guesses = [client.post("/o/token/", {**stale, "client_id": client_id}).status_code for _ in range(4)]
    assert guesses[-1] == 429


def test_revoke__an_unknown_token__answers_200_and_leaves_every_nodes_token_cache(client, service_account):
    client_id, secret = service_account("config:read")
    token = get_token(client, client_id, secret).json()["access_token"]
    auth = basic_auth(client_id, secret)
    epoch = cache.get(REVOCATION_EPOCH_KEY)
    assert (
        client.post("/o/revoke_token/", {"token": "not-a-token"}, HTTP_AUTHORIZATION=auth).status_code == 200
    )
    assert cache.get(REVOCATION_EPOCH_KEY) == epoch
    assert client.post("/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=auth).status_code == 200
    assert cache.get(REVOCATION_EPOCH_KEY) != epoch  # a real revocation reaches every node
    assert client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


@pytest.mark.parametrize(
    ("endpoint", "body"), [("/o/introspect/", {"token": "x"}), ("/o/revoke_token/", {"token": "x"})]
)
def test_introspect_and_revoke__repeated_wrong_secrets__are_throttled_like_the_token_endpoint(
    client, service_account, settings, endpoint, body
):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    statuses = [
        client.post(endpoint, body, HTTP_AUTHORIZATION=basic_auth(client_id, "wrong")).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    throttled = client.post(endpoint, body, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
    assert throttled.status_code == 429  # each guess cost a password hash: the counter is shared
    assert get_token(client, client_id, secret).status_code == 429


def test_password_grant__disabled_by_default(client, django_user_model):
    account, secret = service_account_create(name="legacy", scopes=["config:read"])
    user_account_create(username="carol", scopes=["config:read"], password="pw-carol-12345")
    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "carol", "password": "pw-carol-12345"},
        HTTP_AUTHORIZATION=basic_auth(account.application.client_id, secret),
    )
    wrong = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "carol", "password": "not-hers"},
        HTTP_AUTHORIZATION=basic_auth(account.application.client_id, secret),
    )
    # RFC 6749 5.2: a grant the server does not offer, whatever the credentials (it was
    # invalid_grant, "Invalid credentials given.", which clients show as a wrong password)
    for answer in (response, wrong):
        assert (answer.status_code, answer.json()["error"]) == (400, "unsupported_grant_type")


def test_password_grant__turned_on__is_offered_again(client, settings):
    settings.PLATFORM_ALLOW_PASSWORD_GRANT = True
    account, secret = service_account_create(name="legacy", scopes=["config:read"])
    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "nobody", "password": "x"},
        HTTP_AUTHORIZATION=basic_auth(account.application.client_id, secret),
    )
    assert response.json()["error"] != "unsupported_grant_type"
    assert (
        "password" in client.get("/o/.well-known/oauth-authorization-server").json()["grant_types_supported"]
    )


def test_server_metadata__also_at_rfc_8414s_place_for_the_issuer(client):
    metadata = client.get("/o/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == "http://testserver/o"
    again = client.get("/.well-known/oauth-authorization-server/o").json()
    assert again.pop("generated_at") and metadata.pop("generated_at") and again == metadata


def test_server_metadata__names_the_endpoints(client):
    body = client.get("/o/.well-known/oauth-authorization-server").json()
    assert body["token_endpoint"] == "http://testserver/o/token/"
    assert body["jwks_uri"] == "http://testserver/o/.well-known/jwks.json"
    assert "config:read" in body["scopes_supported"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    # a public PKCE client authenticates with none (RFC 8414), as the documented public clients do
    methods = body["token_endpoint_auth_methods_supported"]
    assert methods == ["client_secret_basic", "client_secret_post", "none"]


@pytest.mark.parametrize(
    "path", ["/o/device-authorization/", "/o/device/", "/o/device-confirm/a/b", "/o/device-grant-status/a/b"]
)
def test_device_flow__is_not_served(client, path):
    """No account can hold the device grant (it is not in the server metadata): no endpoints."""
    assert client.post(path).status_code == 404


@pytest.mark.parametrize("extra", [{}, {"device_code": "x"}])
def test_device_grant_at_the_token_endpoint__unsupported_grant_type(client, extra):
    # django-oauth-toolkit's token view answered it before the server's grants: a 500 without
    # device_code, 404 device_not_found with one
    response = client.post(
        "/o/token/", {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", **extra}
    )
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


def test_disabled_user_account__its_tokens_stop_working(client, django_capture_on_commit_callbacks):
    # given a user's token (issued directly here; the PKCE flow is tested above)
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from auth_app.services import account_disable

    account = user_account_create(username="gina", scopes=["config:read"], password="pw-gina-123456")
    AccessToken.objects.create(
        user=account.user,
        token="gina-token",
        scope="config:read",
        expires=timezone.now() + timedelta(hours=1),
    )
    auth = {"HTTP_AUTHORIZATION": "Bearer gina-token"}
    assert client.get("/api/v1/config/", **auth).status_code == 200
    # when
    with django_capture_on_commit_callbacks(execute=True):
        account_disable(account=account)
    # then
    assert client.get("/api/v1/config/", **auth).status_code == 401


def test_client_secret_check__remembers_successes_not_failures_nor_rotated_secrets(monkeypatch):
    from django.contrib.auth import hashers

    from auth_app import secrets as client_secrets
    from auth_app.services import account_rotate_secret

    account, secret = service_account_create(name="hashy", scopes=["config:read"])
    stored = account.application.client_secret
    calls = []
    real = hashers.check_password
    monkeypatch.setattr(client_secrets, "check_password", lambda *a: calls.append(1) or real(*a))
    # the first success hashes, the next ones do not
    assert client_secrets.check_client_secret(secret, stored)
    assert client_secrets.check_client_secret(secret, stored)
    assert len(calls) == 1
    # a wrong secret is hashed (and refused) every time
    assert not client_secrets.check_client_secret("wrong", stored)
    assert not client_secrets.check_client_secret("wrong", stored)
    assert len(calls) == 3
    # after a rotation the old secret is refused against the new hash
    account_rotate_secret(account=account)
    account.application.refresh_from_db()
    assert not client_secrets.check_client_secret(secret, account.application.client_secret)


@pytest.mark.parametrize(
    ("path", "method", "allow"),
    [
        ("/o/token/", "get", "POST, OPTIONS"),
        ("/o/revoke_token/", "put", "POST, OPTIONS"),
        ("/o/introspect/", "get", "POST"),
        ("/o/.well-known/jwks.json", "post", "GET, HEAD"),
        ("/o/.well-known/oauth-authorization-server", "delete", "GET, HEAD"),
    ],
)
def test_another_method__405_in_the_error_shape(client, path, method, allow):
    # was an empty text/html 405 (token, revoke, introspect) or CSRF's 403 HTML page (the .well-known)
    response = getattr(client, method)(path)
    assert response.status_code == 405 and response["Allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_client_without_a_platform_account__gets_no_token(client):
    # an OAuth2 application added in the admin (no account) got tokens whose subject,
    # service:<client id>, could be another account's
    from oauth2_provider.models import Application

    Application.objects.create(
        name="bare",
        client_id="quickstart",
        client_secret="s3cret-s3cret",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    answer = get_token(client, "quickstart", "s3cret-s3cret")
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
