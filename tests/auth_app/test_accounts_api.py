"""/api/v1/auth/accounts/: create (secret once), read, update, rotate, disable, delete."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model
from oauth2_provider.models import AccessToken, Application, RefreshToken

from auth_app.models import Account
from auth_app.services import service_account_create
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db
ACCOUNTS = "/api/v1/auth/accounts/"


@pytest.fixture
def operator(api_client):
    return api_client("auth:read", "auth:write", "config:read", "config:write")


def create(caller, **body):
    return caller.post(ACCOUNTS, {"name": "payments", "scopes": ["config:read"], **body}, format="json")


def test_create_service_account__returns_secret_once_and_stores_it_hashed(operator):
    # when
    response = create(operator, metadata={"team": "billing"})
    # then
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "service"
    assert body["scopes"] == ["config:read"]
    assert body["metadata"] == {"team": "billing"}
    secret = body["client_secret"]
    stored = Application.objects.get(client_id=body["client_id"]).client_secret
    assert secret not in stored
    # and no later read shows it
    assert "client_secret" not in operator.get(f"{ACCOUNTS}payments/").json()
    assert secret not in operator.get(ACCOUNTS).content.decode()


def test_created_account__can_get_a_token_with_its_scopes(operator, client):
    body = create(operator).json()
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(body["client_id"], body["client_secret"]),
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "config:read"


def test_create__scope_the_caller_does_not_hold__is_403_scope_escalation(operator):
    response = create(operator, scopes=["events:write"])
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_escalation"
    assert not Account.objects.filter(name="payments").exists()


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"metadata": {"team": "x"}}),
        ("post", "disable/", None),
        ("post", "enable/", None),
        ("delete", "", None),
    ],
)
def test_manage__an_account_holding_scopes_the_caller_lacks__is_403_scope_escalation(
    operator, method, suffix, body
):
    account, _ = service_account_create(name="root", scopes=["admin"])
    response = getattr(operator, method)(f"/api/v1/auth/accounts/root/{suffix}", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_escalation"
    account.refresh_from_db()
    assert account.is_active and account.metadata == {}


def test_create__admin_may_grant_any_scope(api_client):
    assert create(api_client("admin"), scopes=["admin"]).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"scopes": ["config:everything"]}, "scopes"),
        ({"grant_type": "implicit"}, "grant_type"),
        ({"grant_type": "password"}, "grant_type"),
        ({"grant_type": "authorization_code"}, "redirect_uris"),
        ({"client_type": "public"}, "client_type"),
        ({"metadata": "not-a-dict"}, "metadata"),
    ],
)
def test_create__bad_input__is_400_naming_the_field(operator, body, field):
    response = create(operator, **body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Account.objects.exists() or not Account.objects.filter(name="payments").exists()


def test_create__duplicate_name__is_409_exists_and_keeps_the_first(operator):
    first = create(operator).json()
    response = create(operator)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "account_exists"
    assert response.json()["error"]["details"] == {"name": "payments"}
    assert Account.objects.get(name="payments").application.client_id == first["client_id"]


def test_create_public_pkce_client__has_no_secret(operator):
    response = create(
        operator,
        grant_type="authorization_code",
        client_type="public",
        redirect_uris=["https://app.example.com/callback"],
    )
    assert response.status_code == 201
    assert "client_secret" not in response.json()
    assert response.json()["client_type"] == "public"


@pytest.mark.parametrize("grant_type", ["client_credentials", "authorization_code"])
def test_grant_type__is_answered_as_the_create_call_takes_it(operator, grant_type):
    """An account read back can be created again from its own answer (DOT spells it with '-')."""
    redirect = (
        {"redirect_uris": ["https://app.example.com/callback"]} if grant_type == "authorization_code" else {}
    )
    made = create(operator, grant_type=grant_type, **redirect).json()
    assert made["grant_type"] == grant_type
    assert operator.get(f"{ACCOUNTS}payments/").json()["grant_type"] == grant_type


def test_create_user_account(operator, django_user_model):
    response = create(operator, name="alice", type="user", password="pw-alice-123456", email="a@example.com")
    assert response.status_code == 201
    assert response.json()["username"] == "alice"
    assert django_user_model.objects.get(username="alice").check_password("pw-alice-123456")


def test_list__is_paginated_and_filterable(operator, django_assert_max_num_queries):
    for name in ("a1", "a2", "a3"):
        create(operator, name=name)
    with django_assert_max_num_queries(3):
        response = operator.get(ACCOUNTS, {"type": "service", "page_size": 2})
    body = response.json()
    assert len(body["results"]) == 2
    assert body["next"]
    rest = operator.get(body["next"]).json()["results"]
    names = {a["name"] for a in body["results"] + rest}
    assert {"a1", "a2", "a3"} <= names


def test_update__narrowing_scopes_revokes_live_tokens(operator, client, django_capture_on_commit_callbacks):
    body = create(operator, scopes=["config:read", "config:write"]).json()
    token = client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(body["client_id"], body["client_secret"]),
    ).json()
    assert (
        client.get("/api/v1/config/", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}").status_code == 200
    )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.patch(f"{ACCOUNTS}payments/", {"scopes": ["config:read"]}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["scopes"] == ["config:read"]
    assert (
        client.get("/api/v1/config/", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}").status_code == 401
    )


def test_rotate_secret__old_secret_stops_working(operator, client, django_capture_on_commit_callbacks):
    body = create(operator).json()
    with django_capture_on_commit_callbacks(execute=True):
        rotated = operator.post(f"{ACCOUNTS}payments/rotate-secret/", {}, format="json").json()
    assert rotated["client_secret"] != body["client_secret"]
    old = client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(body["client_id"], body["client_secret"]),
    )
    new = client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(body["client_id"], rotated["client_secret"]),
    )
    assert (old.status_code, new.status_code) == (401, 200)


def test_disable_then_enable(operator, client, django_capture_on_commit_callbacks):
    body = create(operator).json()
    auth = basic_auth(body["client_id"], body["client_secret"])
    with django_capture_on_commit_callbacks(execute=True):
        assert operator.post(f"{ACCOUNTS}payments/disable/").json()["is_active"] is False
    assert (
        client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).status_code
        == 401
    )
    operator.post(f"{ACCOUNTS}payments/enable/")
    assert (
        client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).status_code
        == 200
    )


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_disable_and_enable__a_body_field__is_refused_and_nothing_changes(operator, action):
    # {"x": 1} was ignored with a 200 (the README: a body field the call does not know is a 400)
    create(operator)
    answer = operator.post(f"{ACCOUNTS}payments/{action}/", {"x": 1}, format="json")
    assert (answer.status_code, answer.json()["error"]["details"]) == (400, {"x": ["Unknown field."]})
    assert Account.objects.get(name="payments").is_active is True
    assert operator.post(f"{ACCOUNTS}payments/{action}/").status_code == 200  # no body: as before


def test_disable__revokes_the_tokens_enabling_again_does_not_revive_them(
    operator, client, django_capture_on_commit_callbacks
):
    body = create(operator).json()
    auth = basic_auth(body["client_id"], body["client_secret"])
    token = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth).json()
    bearer = f"Bearer {token['access_token']}"
    assert client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 200
    application = Application.objects.get(client_id=body["client_id"])
    user = get_user_model().objects.create(username="someone")
    RefreshToken.objects.create(application=application, user=user, token="a-refresh-token")
    with django_capture_on_commit_callbacks(execute=True):
        operator.post(f"{ACCOUNTS}payments/disable/")
        operator.post(f"{ACCOUNTS}payments/enable/")
    # was 200 again: the token had only been refused while the account was disabled
    assert client.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 401
    assert not RefreshToken.objects.filter(application=application).exists()


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "disable/", None),
        ("delete", "", None),
        ("patch", "", {"scopes": ["auth:read", "auth:write"]}),
    ],
)
def test_own_account__cannot_be_disabled_deleted_or_narrowed(operator, method, path, body):
    # given the account the operator's token belongs to
    own = Account.objects.order_by("-id").first().name
    # when it turns on itself
    response = getattr(operator, method)(f"{ACCOUNTS}{own}/{path}", body, format="json")
    # then it is refused, and its token still works
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "own_account"
    assert Account.objects.get(name=own).is_active
    assert operator.get(f"{ACCOUNTS}{own}/").status_code == 200


def test_own_account__widening_or_keeping_its_scopes_is_allowed(operator):
    own = Account.objects.order_by("-id").first()
    response = operator.patch(f"{ACCOUNTS}{own.name}/", {"scopes": own.scope_list}, format="json")
    assert response.status_code == 200, response.content


def test_delete__removes_client_and_tokens(operator, client):
    body = create(operator).json()
    client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(body["client_id"], body["client_secret"]),
    )
    assert operator.delete(f"{ACCOUNTS}payments/").status_code == 204
    assert not Application.objects.filter(client_id=body["client_id"]).exists()
    assert not AccessToken.objects.filter(application__client_id=body["client_id"]).exists()
    assert operator.get(f"{ACCOUNTS}payments/").status_code == 404


def test_unknown_account__is_404(operator):
    assert operator.get(f"{ACCOUNTS}nobody/").json()["error"]["code"] == "not_found"


def test_reader__cannot_write(api_client):
    reader = api_client("auth:read")
    assert reader.get(ACCOUNTS).status_code == 200
    assert create(reader).status_code == 403


def test_changes__are_audited_as_logs_and_events_without_secrets(
    operator, caplog, django_capture_on_commit_callbacks
):
    from event_app.models import Event

    with (
        caplog.at_level(logging.INFO, logger="platform.audit"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        secret = create(operator).json()["client_secret"]
        operator.post(f"{ACCOUNTS}payments/disable/")
    types = [record.event_type for record in caplog.records]
    assert types == ["auth.account.created", "auth.account.disabled"]
    assert secret not in caplog.text
    events = Event.objects.filter(source="/platform/auth", data__account="payments").order_by("id")
    assert [event.type for event in events] == ["auth.account.created", "auth.account.disabled"]
    assert all(secret not in str(event.data) for event in events)


def test_failed_authentications__are_events_but_a_flood_is_capped(client, django_capture_on_commit_callbacks):
    from event_app.models import Event

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(15):
            client.get("/api/v1/config/", HTTP_AUTHORIZATION="Bearer forged")
    failures = Event.objects.filter(type="auth.authentication.failed")
    assert failures.count() == 10
    assert failures.first().data["endpoint"] == "/api/v1/config/"


@pytest.mark.parametrize("client_id", ["app\x00", "app\ud800"])
def test_failed_sign_in__a_client_id_no_database_stores__its_event_is_kept_cleaned(
    client, django_capture_on_commit_callbacks, client_id
):
    # The failure's audit event quotes the client id: on PostgreSQL a NUL in it made the token
    # endpoint answer 500 (a lone surrogate arrives as bytes that are not UTF-8; Django reads it as U+FFFD)
    from event_app.models import Event
    from event_app.services import event_publish

    form = "grant_type=client_credentials&client_secret=x&client_id=" + (
        "app%00" if "\x00" in client_id else "app%ED%A0%80"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/o/token/", data=form, content_type="application/x-www-form-urlencoded")
        event_publish(
            type="auth.test", source="/platform/test", subject=client_id, data={client_id: [client_id]}
        )

    assert response.status_code == 401, response.content
    [failure] = Event.objects.filter(type="auth.authentication.failed")
    assert "\x00" not in str(failure.data)
    own = Event.objects.get(type="auth.test")
    cleaned = client_id.replace("\x00", "").replace("\ud800", "\ufffd")
    assert (own.subject, own.data) == (cleaned, {cleaned: [cleaned]})


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_create_and_update__metadata_number_beyond_floats__is_400(operator, number):
    """``1e999`` parses as an infinite float, which no JSON column stores: it was a 500."""
    body = '{"name": "payments", "type": "service", "metadata": {"a": NUMBER}}'.replace("NUMBER", number)
    response = operator.post("/api/v1/auth/accounts/", data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    finite = "Numbers must be finite (no NaN or Infinity)."
    assert response.json()["error"]["details"] == {"metadata": [finite]}
    create(operator)
    body = '{"metadata": {"a": [NUMBER]}}'.replace("NUMBER", number)
    response = operator.patch("/api/v1/auth/accounts/payments/", data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert Account.objects.get(name="payments").metadata == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "service", "password": "long-enough-pw"}, "password"),
        ({"type": "service", "email": "a@example.com"}, "email"),
        ({"type": "user", "grant_type": "authorization_code"}, "grant_type"),
        ({"type": "user", "redirect_uris": ["https://a.example/cb"]}, "redirect_uris"),
        # client_credentials, the default grant
        ({"type": "service", "redirect_uris": ["https://a.example/cb"]}, "redirect_uris"),
    ],
)
def test_create__a_field_the_account_type_does_not_take__is_400_naming_it(operator, body, field):
    response = operator.post("/api/v1/auth/accounts/", {"name": "payments", **body}, format="json")
    assert response.status_code == 400, response.content  # it was 201, the field dropped
    assert list(response.json()["error"]["details"]) == [field]
    assert not Account.objects.filter(name="payments").exists()
