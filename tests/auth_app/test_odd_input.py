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


def get_token(client, authorization, ip="10.0.0.1", **data):
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials", **data},
        HTTP_AUTHORIZATION=authorization,
        REMOTE_ADDR=ip,
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


def _spellings(client_id: str, count: int) -> list[str]:
    """The same client id, form-encoded differently each time (RFC 6749 2.3.1)."""
    return [client_id[:i] + f"%{ord(client_id[i]):02X}" + client_id[i + 1 :] for i in range(count)]


def test_token_failures__count_against_the_client_however_basic_spells_its_id(
    client, service_account, settings
):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    # given wrong secrets from several addresses, the client id spelt differently each time
    for number, spelt in enumerate(_spellings(client_id, 3)):
        assert get_token(client, basic_auth(spelt, "wrong"), ip=f"10.0.1.{number}").status_code == 401
    # then the client is locked out, from any address
    assert get_token(client, basic_auth(client_id, secret), ip="10.0.2.1").status_code == 429


def test_token_failures__count_against_the_client_when_basic_is_not_strict_base64(
    client, service_account, settings
):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    encoded = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    for number in range(3):
        sloppy = f"Basic {encoded[:4]}!{'.' * number}{encoded[4:]}"  # base64 with junk in it
        assert get_token(client, sloppy, ip=f"10.0.1.{number}").status_code == 401
    assert get_token(client, basic_auth(client_id, secret), ip="10.0.2.1").status_code == 429


def test_token_failures__count_against_the_body_client_id_behind_a_decoy_basic_header(
    client, service_account, settings
):
    settings.PLATFORM_TOKEN_FAILURE_LIMIT = 3
    client_id, secret = service_account("config:read")
    for number in range(3):
        response = get_token(
            client,
            basic_auth(f"decoy-{number}", "x"),
            ip=f"10.0.1.{number}",
            client_id=client_id,
            client_secret="wrong",
        )
        assert response.status_code == 401
    assert get_token(client, basic_auth(client_id, secret), ip="10.0.2.1").status_code == 429


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
