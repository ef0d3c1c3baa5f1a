"""The auth admin screens: no secret on any page, actions go through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from auth_app.models import Account, Role, Rule
from auth_app.services import service_account_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", password="pw-root-123456")
    client.force_login(user)
    return client


def test_account_pages__never_show_the_secret(admin_client):
    account, secret = service_account_create(name="payments", scopes=["config:read"])
    listing = admin_client.get("/admin/auth_app/account/")
    detail = admin_client.get(f"/admin/auth_app/account/{account.pk}/change/")
    application = admin_client.get(f"/admin/oauth2_provider/application/{account.application.pk}/change/")
    assert listing.status_code == detail.status_code == 200
    for page in (listing, detail, application):
        assert secret not in page.content.decode()
    assert account.application.client_id in listing.content.decode()


def test_rotate_action__shows_the_new_secret_once(admin_client):
    account, old = service_account_create(name="payments", scopes=["config:read"])
    response = admin_client.post(
        "/admin/auth_app/account/",
        {"action": "rotate_secrets", "_selected_action": [account.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "New secret of payments" in page
    assert old not in page


def test_disable_action__disables(admin_client):
    account, _ = service_account_create(name="payments", scopes=["config:read"])
    admin_client.post(
        "/admin/auth_app/account/", {"action": "disable_accounts", "_selected_action": [account.pk]}
    )
    assert Account.objects.get(pk=account.pk).is_active is False


def test_rule_form__refuses_a_pattern_that_does_not_parse(admin_client):
    role = Role.objects.create(name="r")
    response = admin_client.post(
        "/admin/auth_app/rule/add/",
        {"role": role.pk, "resource": "config:[x]", "action": "read", "effect": "allow", "priority": 0},
    )
    assert response.status_code == 200
    assert "is not" in response.content.decode()
    assert not Rule.objects.exists()


def test_rule_form__valid_rule_is_saved(admin_client):
    role = Role.objects.create(name="r")
    response = admin_client.post(
        "/admin/auth_app/rule/add/",
        {
            "role": role.pk,
            "resource": "config:payments/*",
            "action": "read",
            "effect": "allow",
            "priority": 0,
        },
    )
    assert response.status_code == 302
    assert Rule.objects.get().resource == "config:payments/*"


def _account_form(account: Account, **changes) -> dict:
    form = {"scopes": account.scopes, "metadata": "{}", "is_active": "on"}
    form.update(changes)
    return form


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"scopes": "config:read nonsense:scope"}, "Unknown scopes: nonsense:scope"),
        ({"metadata": "[1, 2]"}, "Metadata: Expected a dictionary of items"),
        ({"metadata": '{"a": "\\u0000"}'}, "NUL characters"),
        ({"metadata": "{bad"}, "Enter a valid JSON."),
    ],
)
def test_account_form__refuses_what_the_api_refuses_with_a_form_error(admin_client, changes, error):
    account, _ = service_account_create(name="payments", scopes=["config:read"], metadata={"team": "a"})
    form = _account_form(account, **changes)
    response = admin_client.post(f"/admin/auth_app/account/{account.pk}/change/", form)
    assert response.status_code == 200
    assert error in response.content.decode()
    stored = Account.objects.get(pk=account.pk)
    assert (stored.scopes, stored.metadata) == ("config:read", {"team": "a"})


def test_account_form__the_name_cannot_be_changed(admin_client):
    """No service renames an account; the form took any name (a rename with a scope change was dropped)."""
    account, _ = service_account_create(name="payments", scopes=["config:read"])
    page = admin_client.get(f"/admin/auth_app/account/{account.pk}/change/").content.decode()
    assert 'name="name"' not in page
    form = _account_form(account, name="Not A Name!")
    response = admin_client.post(f"/admin/auth_app/account/{account.pk}/change/", form)
    assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).name == "payments"


@pytest.fixture
def narrowed(db):
    """An account with config:read whose roles allow config:public/* and config:secret/*."""
    from auth_app import services

    account, _ = service_account_create(name="reader", scopes=["config:read"])
    for name, resource in (("public-only", "config:public/*"), ("secret-extra", "config:secret/*")):
        role = services.role_create(name=name)
        services.rule_create(role=role, resource=resource, action="read")
        services.binding_create(role=role, account=account)
    return account


def _may_read_secret(account) -> bool:
    from auth_app.selectors import is_allowed

    scopes = frozenset(account.scope_list)
    return is_allowed(account_id=account.pk, scopes=scopes, resource="config:secret/x", action="read").allowed


@pytest.mark.parametrize("how", ["page", "action"])
def test_role_delete__its_rules_stop_applying_at_once(
    admin_client, narrowed, how, django_capture_on_commit_callbacks
):
    from auth_app.selectors import bump_policy_version

    bump_policy_version()
    assert _may_read_secret(narrowed)  # compiled and cached
    role = Role.objects.get(name="secret-extra")
    with django_capture_on_commit_callbacks(execute=True):
        if how == "page":
            admin_client.post(f"/admin/auth_app/role/{role.pk}/delete/", {"post": "yes"})
        else:
            selected = {"action": "delete_selected", "_selected_action": [role.pk], "post": "yes"}
            admin_client.post("/admin/auth_app/role/", selected)
    assert not Role.objects.filter(name="secret-extra").exists()
    assert not _may_read_secret(narrowed)


def test_rules_deleted_with_the_list_action__stop_applying_at_once(
    admin_client, narrowed, django_capture_on_commit_callbacks
):
    from auth_app.selectors import bump_policy_version

    bump_policy_version()
    assert _may_read_secret(narrowed)
    rule = Rule.objects.get(resource="config:secret/*")
    with django_capture_on_commit_callbacks(execute=True):
        selected = {"action": "delete_selected", "_selected_action": [rule.pk], "post": "yes"}
        admin_client.post("/admin/auth_app/rule/", selected)
    assert not Rule.objects.filter(pk=rule.pk).exists()
    assert not _may_read_secret(narrowed)


def test_account_form__narrowing_scopes_revokes_live_tokens_as_the_api_does(
    admin_client, django_capture_on_commit_callbacks
):
    from django.test import Client

    from tests.conftest import basic_auth

    account, secret = service_account_create(name="payments", scopes=["config:read", "events:read"])
    caller = Client()
    auth = basic_auth(account.application.client_id, secret)
    response = caller.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)
    bearer = f"Bearer {response.json()['access_token']}"
    assert caller.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/auth_app/account/{account.pk}/change/", _account_form(account, scopes="config:read")
        )
    assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).scopes == "config:read"
    assert caller.get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 401


@pytest.fixture
def viewer(client):
    """A staff user who may only view accounts and roles."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_account", "view_role"]))
    client.force_login(user)
    return client


@pytest.mark.parametrize("action", ["rotate_secrets", "disable_accounts", "enable_accounts"])
def test_account_actions__refused_to_who_may_only_view(viewer, action):
    account, _ = service_account_create(name="payments", scopes=["config:read"])
    active = action != "enable_accounts"  # each action would change what it starts from
    Account.objects.filter(pk=account.pk).update(is_active=active)
    secret = account.application.client_secret
    response = viewer.post(
        "/admin/auth_app/account/", {"action": action, "_selected_action": [account.pk]}, follow=True
    )
    assert "New secret of" not in response.content.decode()
    stored = Account.objects.select_related("application").get(pk=account.pk)
    assert stored.is_active is active and stored.application.client_secret == secret


def test_role_form__a_role_keeps_its_name(admin_client):
    role = Role.objects.create(name="reader")
    page = admin_client.get(f"/admin/auth_app/role/{role.pk}/change/").content.decode()
    assert 'name="name"' not in page


def test_rule_form__priority_in_the_api_range(admin_client):
    role = Role.objects.create(name="r")
    form = {"role": role.pk, "resource": "config:x", "action": "read", "effect": "allow"}
    response = admin_client.post("/admin/auth_app/rule/add/", {**form, "priority": 5_000_000_000})
    assert response.status_code == 200 and not Rule.objects.exists()


# --- django-oauth-toolkit's screens ---------------------------------------------------------------


def _issue_token(account, secret) -> str:
    from django.test import Client

    from tests.conftest import basic_auth

    auth = basic_auth(account.application.client_id, secret)
    response = Client().post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=auth)
    return response.json()["access_token"]


@pytest.mark.parametrize("model", ["application", "accesstoken", "refreshtoken", "grant", "idtoken"])
def test_oauth_screens__nothing_is_added_there(admin_client, model):
    assert admin_client.get(f"/admin/oauth2_provider/{model}/add/").status_code == 403


def test_oauth_application__read_only_the_secret_and_grant_set_through_the_service_only(admin_client):
    """The toolkit's own form set the secret, grant and client type: no audit, old tokens lived on."""
    from oauth2_provider.models import Application

    account, secret = service_account_create(name="payments", scopes=["config:read"])
    application = account.application
    url = f"/admin/oauth2_provider/application/{application.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="client_secret"' not in page and 'name="authorization_grant_type"' not in page
    assert application.client_secret not in page and secret not in page  # neither hashed nor clear
    form = {
        "client_id": application.client_id,
        "client_secret": "chosen-by-hand",
        "client_type": "public",
        "authorization_grant_type": "password",
        "name": application.name,
        "algorithm": "",
    }
    assert admin_client.post(url, form).status_code == 403
    stored = Application.objects.get(pk=application.pk)
    assert (stored.client_secret, stored.client_type, stored.authorization_grant_type) == (
        application.client_secret,
        "confidential",
        "client-credentials",
    )
    delete = f"/admin/oauth2_provider/application/{application.pk}/delete/"
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Account.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize("model", ["refreshtoken", "grant", "idtoken"])
def test_oauth_rows_but_access_tokens__cannot_be_deleted_there(admin_client, model):
    """A deleted refresh token lost the tombstone reuse protection needs; grants and ID tokens
    go with their tokens."""
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone

    account, _ = service_account_create(name="payments", scopes=["config:read"])
    user = get_user_model().objects.get(username="root")
    owned = {"user": user, "application": account.application}
    expires = timezone.now() + timedelta(hours=1)
    rows = {
        "refreshtoken": {"token": "r" * 40},
        "grant": {"code": "c" * 40, "expires": expires, "redirect_uri": "https://x.example/"},
        "idtoken": {"expires": expires},
    }
    row = apps.get_model("oauth2_provider", model).objects.create(**owned, **rows[model])
    listing = admin_client.get(f"/admin/oauth2_provider/{model}/").content.decode()
    assert "delete_selected" not in listing
    response = admin_client.post(f"/admin/oauth2_provider/{model}/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("how", ["page", "action"])
def test_access_token_deleted_there__is_revoked_through_the_service(
    admin_client, how, django_capture_on_commit_callbacks, caplog
):
    """A raw delete left the token valid on every node that had it cached, and unaudited."""
    from django.test import Client
    from oauth2_provider.models import AccessToken

    account, secret = service_account_create(name="payments", scopes=["config:read"])
    token = _issue_token(account, secret)
    bearer = f"Bearer {token}"
    assert Client().get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 200  # cached
    row = AccessToken.objects.get()
    page = admin_client.get(f"/admin/oauth2_provider/accesstoken/{row.pk}/change/").content.decode()
    assert token not in page
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", "platform.audit"):
        if how == "page":
            admin_client.post(f"/admin/oauth2_provider/accesstoken/{row.pk}/delete/", {"post": "yes"})
        else:
            selected = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
            admin_client.post("/admin/oauth2_provider/accesstoken/", selected)
    assert not AccessToken.objects.exists()
    assert Client().get("/api/v1/auth/whoami/", HTTP_AUTHORIZATION=bearer).status_code == 401
    assert "auth.token.revoked" in [r.msg for r in caplog.records]


# --- Django's users ---------------------------------------------------------------------------------


def test_user_with_an_account__keeps_its_name(admin_client):
    """The username is the account's identity (``user:<name>`` in tokens, bindings, audit)."""
    from auth_app.services import user_account_create

    account = user_account_create(username="alice", scopes=["config:read"], password="pw-alice-123456")
    url = f"/admin/auth/user/{account.user_id}/change/"
    assert 'name="username"' not in admin_client.get(url).content.decode()
    form = {"username": "mallory", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    assert admin_client.post(url, {**form, "is_active": "on"}).status_code == 302  # the rest is saved
    assert get_user_model().objects.get(pk=account.user_id).username == "alice"
    plain = get_user_model().objects.create_user("bob")  # no account: Django's screen as it was
    assert 'name="username"' in admin_client.get(f"/admin/auth/user/{plain.pk}/change/").content.decode()


@pytest.mark.parametrize("how", ["page", "action"])
def test_user_deleted_there__its_account_goes_through_the_service(
    admin_client, how, django_capture_on_commit_callbacks, caplog
):
    from auth_app.selectors import policy_version
    from auth_app.services import user_account_create

    account = user_account_create(username="alice", scopes=["config:read"], password="pw-alice-123456")
    plain = get_user_model().objects.create_user("bob")
    before = policy_version()
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", "platform.audit"):
        if how == "page":
            admin_client.post(f"/admin/auth/user/{account.user_id}/delete/", {"post": "yes"})
            admin_client.post(f"/admin/auth/user/{plain.pk}/delete/", {"post": "yes"})
        else:
            selected = {"action": "delete_selected", "_selected_action": [account.user_id, plain.pk]}
            admin_client.post("/admin/auth/user/", {**selected, "post": "yes"})
    assert not get_user_model().objects.filter(username__in=["alice", "bob"]).exists()
    assert not Account.objects.filter(pk=account.pk).exists()
    assert [r.data for r in caplog.records if r.msg == "auth.account.deleted"] == [{"account": "alice"}]
    assert policy_version() != before


def test_role_inlines__each_rule_and_binding_goes_through_the_services_audited(admin_client, caplog):
    from auth_app import services

    reader, _ = service_account_create(name="reader", scopes=["config:read"])
    writer, _ = service_account_create(name="writer", scopes=["config:read"])
    role = services.role_create(name="ops")
    kept = services.rule_create(role=role, resource="config:a/*", action="read")
    dropped = services.rule_create(role=role, resource="config:b/*", action="read")
    moved = services.binding_create(role=role, account=reader)
    form = {"description": "", "rules-TOTAL_FORMS": "3", "rules-INITIAL_FORMS": "2"}
    form.update({"bindings-TOTAL_FORMS": "1", "bindings-INITIAL_FORMS": "1"})
    for index, rule in enumerate((kept, dropped)):
        form.update({f"rules-{index}-id": rule.pk, f"rules-{index}-role": role.pk})
        form.update({f"rules-{index}-resource": rule.resource, f"rules-{index}-action": "read"})
        form.update({f"rules-{index}-effect": "allow", f"rules-{index}-priority": "0"})
    form.update({"rules-0-priority": "7", "rules-1-DELETE": "on"})
    form.update({"rules-2-role": role.pk, "rules-2-resource": "config:c/*", "rules-2-action": "read"})
    form.update({"rules-2-effect": "deny", "rules-2-priority": "1", "rules-2-description": "no c"})
    form.update({"bindings-0-id": moved.pk, "bindings-0-role": role.pk, "bindings-0-account": writer.pk})
    caplog.set_level("INFO", logger="auth_app.audit")
    caplog.clear()
    response = admin_client.post(f"/admin/auth_app/role/{role.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    audited = [
        (r.event_type, r.data) for r in caplog.records if getattr(r, "event_type", "") != "auth.role.updated"
    ]
    created = Rule.objects.get(resource="config:c/*")
    assert audited == [
        ("auth.rule.deleted", {"rule": dropped.pk}),
        ("auth.rule.updated", {"rule": kept.pk, "priority": 7}),
        (
            "auth.rule.created",
            {"role": "ops", "rule": created.pk, "resource": "config:c/*", "action": "read"}
            | {"effect": "deny", "priority": 1},
        ),
        ("auth.binding.deleted", {"role": "ops", "account": "reader"}),
        ("auth.binding.created", {"role": "ops", "account": "writer"}),
    ]
    assert (created.description, Rule.objects.get(pk=kept.pk).priority) == ("no c", 7)
    assert list(role.bindings.values_list("account__name", flat=True)) == ["writer"]


def test_user_password_changed_there__the_service_revokes_the_users_tokens(
    admin_client, django_capture_on_commit_callbacks, caplog
):
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from auth_app.services import user_account_create

    account = user_account_create(username="alice", scopes=["config:read"], password="pw-alice-123456")
    other = user_account_create(username="carol", scopes=["config:read"], password="pw-carol-123456")
    expires = timezone.now() + timedelta(hours=1)
    for user, value in ((account.user, "alice-token"), (other.user, "carol-token")):
        AccessToken.objects.create(user=user, token=value, expires=expires, scope="config:read")
    url = f"/admin/auth/user/{account.user_id}/password/"
    new = {"password1": "a-new-pw-4471-xyz", "password2": "a-new-pw-4471-xyz"}
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", "platform.audit"):
        assert admin_client.post(url, {**new, "password2": "a typo"}).status_code == 200  # refused
        assert AccessToken.objects.filter(user=account.user).exists()  # nothing changed, nothing revoked
        assert admin_client.post(url, new).status_code == 302
    assert get_user_model().objects.get(pk=account.user_id).check_password("a-new-pw-4471-xyz")
    assert list(AccessToken.objects.values_list("user__username", flat=True)) == ["carol"]
    audited = [r.data for r in caplog.records if r.msg == "auth.user.password_changed"]
    assert audited == [{"user": "alice", "password_sign_in": True, "tokens_revoked": 1}]
    assert admin_client.get("/admin/auth/user/999999/password/").status_code in (302, 404)
    assert admin_client.post("/admin/auth/user/nope/password/", new).status_code in (302, 404)
