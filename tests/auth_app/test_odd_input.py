"""Odd and hostile input to the auth service: no 500, the documented error shapes, no escalation.

Tests about NUL characters fail only on PostgreSQL (which refuses U+0000 in text and jsonb).
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from auth_app.models import Account
from auth_app.policy import CompiledPolicy, RuleSpec
from auth_app.services import account_rotate_secret, service_account_create
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db
ACCOUNTS = "/api/v1/auth/accounts/"


@pytest.fixture
def operator(api_client):
    return api_client("auth:read", "auth:write")


def get_token(client, authorization, ip="10.0.0.1", forwarded_for=None, **data):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for is not None else {}
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", **data},
        HTTP_AUTHORIZATION=authorization,
        REMOTE_ADDR=ip,
        **headers,
    )


# --- client authentication ----------------------------------------------------------------------


def test_introspection__old_secret_stops_working_right_after_rotation(
    client, service_account, django_capture_on_commit_callbacks
):
    client_id, secret = service_account("config:read")
    old = basic_auth(client_id, secret)
    assert client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=old).status_code == 200
    # when
    with django_capture_on_commit_callbacks(execute=True):
        account_rotate_secret(account=Account.objects.get(application__client_id=client_id))
    # then
    refused = client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=old)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def test_rotate_secret__of_an_account_holding_scopes_the_caller_lacks__is_scope_escalation(
    operator, service_account
):
    service_account("admin", name="root")
    # when
    response = operator.post(f"{ACCOUNTS}root/rotate-secret/", {}, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_escalation"
    assert "client_secret" not in response.content.decode()


def test_rotate_secret__of_an_account_within_the_callers_scopes__still_works(operator, service_account):
    service_account("auth:read", name="reader")
    response = operator.post(f"{ACCOUNTS}reader/rotate-secret/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["client_secret"]


def test_token_failures__lock_out_the_address_not_the_client(client, service_account, settings):
    """Client ids are public (every token names its client): failures counted per client let
    anyone lock any service out of its tokens. They count per address."""
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    other_id, other_secret = service_account("config:read")
    for _ in range(3):
        assert get_token(client, basic_auth(client_id, "wrong"), ip="10.0.1.1").status_code == 401
    # the client, from another address, still gets its token (it was 429 for five minutes)
    assert get_token(client, basic_auth(client_id, secret), ip="10.0.2.1").status_code == 200
    # the failing address waits, whichever client it names
    assert get_token(client, basic_auth(other_id, other_secret), ip="10.0.1.1").status_code == 429


def test_token_failures__a_forged_x_forwarded_for_is_the_same_address(client, service_account, settings):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    for number in range(3):
        forged = get_token(client, basic_auth(client_id, "wrong"), forwarded_for=f"10.9.9.{number}")
        assert forged.status_code == 401
    assert get_token(client, basic_auth(client_id, secret), forwarded_for="10.9.9.9").status_code == 429


def test_token_failures__behind_a_trusted_proxy_count_the_address_it_forwarded(
    client, service_account, settings
):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}  # PLATFORM_TRUSTED_PROXIES=1
    client_id, secret = service_account("config:read")
    proxied = {"ip": "127.0.0.1"}  # every caller arrives from the proxy
    for _ in range(3):
        wrong = get_token(client, basic_auth(client_id, "wrong"), forwarded_for="10.9.0.1", **proxied)
        assert wrong.status_code == 401
    right = get_token(client, basic_auth(client_id, secret), forwarded_for="1.2.3.4, 10.9.0.2", **proxied)
    assert right.status_code == 200  # another caller behind the same proxy
    again = get_token(client, basic_auth(client_id, secret), forwarded_for="10.9.0.1", **proxied)
    assert again.status_code == 429


def test_anonymous_throttle__a_forged_x_forwarded_for_is_the_same_caller(client):
    statuses = [client.get("/api/docs/", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(70)]
    assert 429 in statuses  # each forged address had a budget of its own


def test_nul_in_client_id__is_invalid_client_not_a_500(client, service_account):
    _, secret = service_account("config:read")
    client.raise_request_exception = False
    nul_basic = basic_auth("a\x00b", secret)
    answers = [
        get_token(client, nul_basic),
        get_token(client, "", client_id="a\x00b", client_secret=secret),
        client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=nul_basic),
        client.post("/o/revoke_token/", {"token": "x"}, HTTP_AUTHORIZATION=nul_basic),
    ]
    assert {(answer.status_code, answer.json()["error"]) for answer in answers} == {(401, "invalid_client")}


def test_non_ascii_basic_header__is_invalid_client_not_a_500(client):
    client.raise_request_exception = False
    header = "Basic \xe9abc"  # a latin-1 byte in the header: base64 refuses it with a ValueError
    answers = [
        get_token(client, header),
        client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=header),
        client.post("/o/revoke_token/", {"token": "x"}, HTTP_AUTHORIZATION=header),
    ]
    assert {(answer.status_code, answer.json()["error"]) for answer in answers} == {(401, "invalid_client")}


def test_nul_in_authorization_code__is_invalid_grant_not_a_500(client):
    account, secret = service_account_create(
        name="app",
        scopes=["config:read"],
        grant_type="authorization_code",
        redirect_uris=["http://x.example/cb"],
    )
    client.raise_request_exception = False
    response = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": "a\x00b",
            "redirect_uri": "http://x.example/cb",
            "code_verifier": "v" * 50,
        },
        HTTP_AUTHORIZATION=basic_auth(account.application.client_id, secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# --- REST API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\x00b", "\ud800"])
def test_account_metadata_the_database_cannot_store__is_400(operator, value):
    operator.raise_request_exception = False

    def send(method, url, body):  # JSON escapes (\u0000, \ud800), as a client would send them
        return getattr(operator, method)(url, json.dumps(body), content_type="application/json")

    created = send("post", ACCOUNTS, {"name": "payments", "metadata": {"k": value}})
    keyed = send("post", ACCOUNTS, {"name": "payments", "metadata": {value: 1}})
    nested = send("post", ACCOUNTS, {"name": "payments", "metadata": {"k": [{"x": value}]}})
    for response in (created, keyed, nested):
        assert response.status_code == 400
        assert list(response.json()["error"]["details"]) == ["metadata"]
    assert not Account.objects.filter(name="payments").exists()

    patched = send("patch", f"{ACCOUNTS}svc-1/", {"metadata": {"k": value}})
    assert patched.status_code == 400
    assert patched.json()["error"]["code"] == "invalid"


def test_account_metadata_nested_deeper_than_the_limit__is_400(operator):
    deep = "[" * 900 + "]" * 900  # parses, but too deep to check or store recursively
    body = '{"name": "payments", "metadata": {"k": ' + deep + "}}"
    response = operator.post(ACCOUNTS, body, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["metadata"]
    assert not Account.objects.filter(name="payments").exists()


@pytest.mark.parametrize("path", ["", "rotate-secret/", "disable/"])
def test_account_name_with_nul__is_404(operator, path):
    operator.raise_request_exception = False
    response = operator.post(f"{ACCOUNTS}a%00b/{path}") if path else operator.get(f"{ACCOUNTS}a%00b/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "url",
    [f"{ACCOUNTS}?type=%00", "/api/v1/auth/rules/?role=%00", "/api/v1/auth/bindings/?account=a%00"],
)
def test_list_filter_with_nul__is_400(operator, url):
    operator.raise_request_exception = False
    response = operator.get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("position", [b"p=abc", b"p=\x00", b"p=1.5", b"\xff"])
def test_cursor_whose_position_is_no_id__is_400_invalid_cursor(operator, position):
    operator.raise_request_exception = False
    cursor = base64.b64encode(position).decode()
    for url in (ACCOUNTS, "/api/v1/auth/roles/", "/api/v1/auth/rules/"):
        response = operator.get(url, {"cursor": cursor})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_cursor"
        assert response.json()["error"]["details"] == {"cursor": ["Not a cursor of this list."]}


# --- policy engine ------------------------------------------------------------------------------


def test_policy_glob__many_stars__match_in_linear_time():
    pattern = "config:" + "*a" * 8 + "*b"
    policy = CompiledPolicy([RuleSpec(1, "role", pattern, "read", "allow", 0)])
    started = time.perf_counter()
    assert policy.match("config", "a" * 40, "read") is None  # backtracking regexes take seconds here
    assert time.perf_counter() - started < 0.5
    assert policy.match("config", "a" * 9 + "b", "read") is not None
    assert policy.match("config", "a/a/a/a/a/a/a/a/b", "read") is not None  # '*' spans '/'
