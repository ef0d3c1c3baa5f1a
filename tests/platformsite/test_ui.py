"""The dashboards shell (server-rendered; the browser tests are in tests/e2e)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_ui__anonymous__is_sent_to_login(client):
    response = client.get("/ui/")
    assert response.status_code == 302
    assert response["Location"].startswith("/ui/login/")


def test_ui__non_staff__is_sent_to_login(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    client.force_login(user)
    assert client.get("/ui/").status_code == 302


def test_ui__staff__sees_every_service_and_readiness(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/ui/")
    assert response.status_code == 200
    page = response.content.decode()
    for service in ("auth", "config", "discovery", "events", "monitor", "router", "trace", "db"):
        assert f'href="/ui/{service}/"' in page
    assert "database: reachable" in page


def test_ui__service_page__shows_its_api(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/ui/config/")
    assert response.status_code == 200
    assert "/api/v1/config/" in response.content.decode()


def test_ui__unknown_service__is_404(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/ui/nothing/").status_code == 404


def test_root__redirects_to_dashboards(client):
    assert client.get("/")["Location"] == "/ui/"


def test_api_docs_and_schema__are_open(client):
    assert client.get("/api/docs/").status_code == 200
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/monitor/ping/" in schema.content


def test_staff_session__counts_as_admin_on_the_api(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/api/v1/config/").status_code == 200


def test_login__non_staff_account__is_refused_with_a_reason(client, django_user_model):
    django_user_model.objects.create_user("bob", password="pw-bob-12345")
    response = client.post("/ui/login/", {"username": "bob", "password": "pw-bob-12345"})
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login__a_wrong_password__keeps_the_user_name_and_the_next_page(client, staff_user):
    response = client.post("/ui/login/", {"username": "operator", "password": "nope", "next": "/ui/trace/"})
    page = response.content.decode()
    assert 'name="username" value="operator"' in page
    assert 'name="next" value="/ui/trace/"' in page


def test_login__staff__lands_on_overview(client, staff_user):
    response = client.post(
        "/ui/login/", {"username": "operator", "password": "pw-operator-1", "next": "/ui/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/ui/"


def test_bearer_api_call__skips_the_session_stack(api_client):
    response = api_client("monitor:read").get("/api/v1/monitor/ping/")
    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")
    assert "X-Frame-Options" not in response


def test_session_api_write__needs_the_csrf_token(staff_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    response = browser.post("/api/v1/auth/roles/", {"name": "r1"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


def test_ui__a_service_without_a_dashboard_links_to_its_records_in_the_admin(client, django_user_model):
    operator = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(operator)
    page = client.get("/ui/auth/").content.decode()
    assert 'href="/admin/auth_app/"' in page  # accounts are managed there: the page had no way to it
    assert "<code>auth:read</code>" in page and "<code>auth:write</code>" in page


def test_ui__the_admin_link_is_shown_only_to_who_may_use_it(client, staff_user):
    client.force_login(staff_user)  # staff without permissions on auth's models: the admin is a 404
    assert "/admin/auth_app/" not in client.get("/ui/auth/").content.decode()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (42, "42 s"),
        (131, "2 min 11 s"),
        (120, "2 min 0 s"),
        (3_661, "1 h 1 min"),
        (180_000, "2 d 2 h"),
    ],
)
def test_age__the_two_largest_units(seconds, shown):
    from platformsite.templatetags.platform_ui import age

    assert age(seconds) == shown  # an age was "131 s", growing without bound
    assert age(None) is None


@pytest.mark.parametrize(
    ("share", "shown"), [(0.0521, "5.21%"), (0, "0%"), (1.0, "100%"), (0.123456, "12.35%")]
)
def test_percent__a_share_as_the_router_shows_rates(share, shown):
    from platformsite.templatetags.platform_ui import percent

    assert percent(share) == shown  # the graph showed 0.0521 beside the router's 70.27%


@pytest.mark.parametrize("path", ["/ui/", "/ui/config/", "/ui/auth/"])
def test_ui__without_the_admin__pages_load_for_a_superuser(client, django_user_model, settings, path):
    """``runservice config --web`` serves no admin: the nav's admin link made every page a 500."""
    settings.ROOT_URLCONF = "tests.platformsite.urls_without_admin"
    operator = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(operator)
    response = client.get(path)
    assert response.status_code == 200
    assert 'href="/admin/' not in response.content.decode()
