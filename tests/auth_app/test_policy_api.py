"""Roles, rules, bindings and the check API; other services authorize through the same helper."""

from __future__ import annotations

import pytest

from auth_app.models import Account, Rule
from auth_app.selectors import is_allowed

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(api_client):
    return api_client("auth:read", "auth:write")


@pytest.fixture
def payments_reader(operator, issue_token, django_capture_on_commit_callbacks):
    """A service with config:read whose role allows only config:payments/*."""
    token = issue_token("config:read")
    account = Account.objects.latest("id")
    with django_capture_on_commit_callbacks(execute=True):
        operator.post("/api/v1/auth/roles/", {"name": "payments-config"}, format="json")
        operator.post(
            "/api/v1/auth/rules/",
            {"role": "payments-config", "resource": "config:payments/*", "action": "read"},
            format="json",
        )
        operator.post(
            "/api/v1/auth/bindings/", {"role": "payments-config", "account": account.name}, format="json"
        )
    return account, token


def test_rule_narrowing__the_service_cannot_read_another_namespace(payments_reader):
    account, _ = payments_reader
    scopes = frozenset(account.scope_list)
    assert is_allowed(
        account_id=account.pk, scopes=scopes, resource="config:payments/production", action="read"
    ).allowed
    assert not is_allowed(
        account_id=account.pk, scopes=scopes, resource="config:orders/production", action="read"
    ).allowed


def test_check_api__for_the_caller(payments_reader, client):
    _, token = payments_reader
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    allowed = client.post(
        "/api/v1/auth/check/",
        {"resource": "config:payments/db", "action": "read"},
        content_type="application/json",
        **auth,
    ).json()
    denied = client.post(
        "/api/v1/auth/check/",
        {"resource": "config:orders/db", "action": "read"},
        content_type="application/json",
        **auth,
    ).json()
    assert allowed["allowed"] is True
    assert allowed["rule"]["resource"] == "config:payments/*"
    assert (denied["allowed"], denied["reason"], denied["rule"]) == (False, "no_matching_rule", None)


def test_check_api__about_another_subject_needs_auth_read(payments_reader, api_client):
    account, _ = payments_reader
    body = {"subject": f"service:{account.name}", "resource": "config:payments/x", "action": "read"}
    outsider = api_client("config:read")
    response = outsider.post("/api/v1/auth/check/", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    answer = api_client("auth:read").post("/api/v1/auth/check/", body, format="json").json()
    assert answer["allowed"] is True
    assert answer["subject"] == f"service:{account.name}"


def test_check_api__unknown_subject__is_denied(api_client):
    body = {"subject": "service:ghost", "resource": "config:x", "action": "read"}
    answer = api_client("auth:read").post("/api/v1/auth/check/", body, format="json").json()
    assert (answer["allowed"], answer["reason"]) == (False, "unknown_subject")  # not a policy's "no"
    body["resource"] = "config"  # a resource that does not parse is refused whoever is asked about
    assert api_client("auth:read").post("/api/v1/auth/check/", body, format="json").status_code == 400


@pytest.mark.parametrize("resource", ["config", "config:*", "nosuch:x x"])
def test_check_api__resource_that_does_not_parse__is_400(api_client, resource):
    response = api_client("config:read").post(
        "/api/v1/auth/check/", {"resource": resource, "action": "read"}, format="json"
    )
    assert response.status_code == 400
    assert "resource" in response.json()["error"]["details"]


@pytest.mark.parametrize("subject", ["robot:x", "service:", "user:a b", "a:b:c"])
def test_check_api__a_subject_that_names_no_account_kind__is_400(api_client, subject):
    body = {"subject": subject, "resource": "config:x", "action": "read"}
    response = api_client("auth:read").post("/api/v1/auth/check/", body, format="json")
    assert response.status_code == 400  # it was 200 unknown_subject, as for a missing account
    assert response.json()["error"]["details"] == {
        "subject": ["service:<name>, user:<name> or an account's name."]
    }


def test_signing_key_rotation__a_body_field_is_refused(api_client):
    response = api_client("admin").post("/api/v1/auth/keys/", {"x": 1}, format="json")
    assert (response.status_code, response.json()["error"]["details"]) == (400, {"x": ["Unknown field."]})
    assert api_client("admin").post("/api/v1/auth/keys/").status_code == 201


def test_check_api__bad_action__is_400(api_client):
    response = api_client("config:read").post(
        "/api/v1/auth/check/", {"resource": "config:x", "action": "fly"}, format="json"
    )
    assert response.status_code == 400


def test_check_api__without_token__is_401(client):
    response = client.post(
        "/api/v1/auth/check/", {"resource": "config:x", "action": "read"}, content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resource": "config:[a]", "action": "read"}, "resource"),
        ({"resource": "nosuch:*", "action": "read"}, "resource"),
        ({"resource": "config:*", "action": "fly"}, "action"),
        ({"resource": "config:*", "action": "read", "effect": "maybe"}, "effect"),
    ],
)
def test_rule_that_does_not_parse__is_400_and_not_stored(operator, body, field):
    operator.post("/api/v1/auth/roles/", {"name": "r"}, format="json")
    response = operator.post("/api/v1/auth/rules/", {"role": "r", **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Rule.objects.exists()


def test_rule_change__takes_effect_at_once(payments_reader, operator, django_capture_on_commit_callbacks):
    account, _ = payments_reader
    scopes = frozenset(account.scope_list)

    def allowed() -> bool:
        return is_allowed(
            account_id=account.pk, scopes=scopes, resource="config:payments/p", action="read"
        ).allowed

    assert allowed()
    rule_id = Rule.objects.get().pk
    with django_capture_on_commit_callbacks(execute=True):
        operator.patch(f"/api/v1/auth/rules/{rule_id}/", {"effect": "deny"}, format="json")
    assert not allowed()
    with django_capture_on_commit_callbacks(execute=True):
        operator.delete(f"/api/v1/auth/rules/{rule_id}/")
    assert allowed()  # no rule for config any more: the scope suffices again


def test_binding_removed__rules_stop_applying(payments_reader, operator, django_capture_on_commit_callbacks):
    account, _ = payments_reader
    scopes = frozenset(account.scope_list)
    binding = operator.get("/api/v1/auth/bindings/", {"account": account.name}).json()["results"][0]
    with django_capture_on_commit_callbacks(execute=True):
        assert operator.delete(f"/api/v1/auth/bindings/{binding['id']}/").status_code == 204
    assert is_allowed(account_id=account.pk, scopes=scopes, resource="config:orders/x", action="read").allowed


def test_duplicate_binding__is_409_exists(payments_reader, operator):
    account, _ = payments_reader
    response = operator.post(
        "/api/v1/auth/bindings/", {"role": "payments-config", "account": account.name}, format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (409, "binding_exists")


def test_duplicate_role__is_409_exists(payments_reader, operator):
    response = operator.post("/api/v1/auth/roles/", {"name": "payments-config"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "role_exists")
    assert response.json()["error"]["details"] == {"name": "payments-config"}


def test_role_detail__lists_rules_and_accounts(payments_reader, operator, django_assert_max_num_queries):
    account, _ = payments_reader
    with django_assert_max_num_queries(3):
        body = operator.get("/api/v1/auth/roles/payments-config/").json()
    assert [rule["resource"] for rule in body["rules"]] == ["config:payments/*"]
    assert body["accounts"] == [account.name]


def test_policy_cache__warm_check_runs_no_query(payments_reader, django_assert_num_queries):
    account, _ = payments_reader
    scopes = frozenset(account.scope_list)
    is_allowed(account_id=account.pk, scopes=scopes, resource="config:payments/a", action="read")
    with django_assert_num_queries(0):
        is_allowed(account_id=account.pk, scopes=scopes, resource="config:payments/b", action="read")


def test_rule_change_on_another_node__applies_after_the_poll_interval(payments_reader):
    from django.core.cache import cache

    from auth_app import selectors

    account, _ = payments_reader
    scopes = frozenset(account.scope_list)

    def allowed() -> bool:
        return is_allowed(
            account_id=account.pk, scopes=scopes, resource="config:orders/x", action="read"
        ).allowed

    assert not allowed()
    # another node removes the binding and bumps the shared version
    account.bindings.all().delete()
    cache.set(selectors.POLICY_VERSION_KEY, "bumped-elsewhere", None)
    assert not allowed()  # this node still uses the version it read less than a second ago
    selectors._version.next_poll = 0.0  # the poll interval has passed
    assert allowed()


def test_role_create__a_concurrent_create_of_the_name__is_409_not_a_500(operator):
    from unittest import mock

    from django.db.models import QuerySet

    from auth_app.services import role_create
    from platformsite.api.errors import Conflict

    assert operator.post("/api/v1/auth/roles/", {"name": "ops"}, format="json").status_code == 201
    with mock.patch.object(QuerySet, "exists", return_value=False), pytest.raises(Conflict) as refused:
        role_create(name="ops")  # past the check, as a second request racing the first
    assert (refused.value.code, refused.value.details) == ("role_exists", {"name": "ops"})
