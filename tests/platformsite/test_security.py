"""Security review: the API docs behind login in production, CORS off, CSRF on every dashboard and
session write.  (401/403 on every API route: test_api_security.py; websockets: test_websocket_walk.py.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.platformsite.test_api_security import route_methods
from tests.platformsite.test_settings import GOOD_KEY, ROOT

pytestmark = pytest.mark.django_db
HOSTILE_ORIGIN = "https://evil.example"
SAMPLES = {"int": "1", "uuid": "00000000-0000-0000-0000-000000000001", "path": "a/b"}
_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


# --- /api/schema/ and /api/docs/ ------------------------------------------------------------------


@pytest.fixture
def docs_closed(settings):
    settings.PLATFORM_API_DOCS_PUBLIC = False


def docs_public(tmp_path, **env: str) -> str:
    """PLATFORM_API_DOCS_PUBLIC as the settings read it from ``env`` in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DATABASE_URL"))}
    clean.update({"PLATFORM_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "platformsite.settings"})
    code = "from django.conf import settings; print(settings.PLATFORM_API_DOCS_PUBLIC)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_docs_setting__off_in_production_on_elsewhere_and_settable(tmp_path):
    production = {"PLATFORM_ENV": "production", "SECRET_KEY": GOOD_KEY, "ALLOWED_HOSTS": "p.example.com"}

    assert docs_public(tmp_path, **production) == "False"
    assert docs_public(tmp_path, **production, PLATFORM_API_DOCS_PUBLIC="true") == "True"
    assert docs_public(tmp_path) == "True"
    assert docs_public(tmp_path, PLATFORM_API_DOCS_PUBLIC="false") == "False"


def test_schema__closed__anonymous_401_in_error_shape(client, docs_closed):
    response = client.get("/api/schema/")

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert "paths" not in response.content.decode()


def test_docs__closed__anonymous_browser_sent_to_login(client, docs_closed):
    response = client.get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"] == "/ui/login/?next=/api/docs/"


def test_schema__closed__any_valid_token_or_session_reads_it(client, docs_closed, api_client, staff_user):
    assert api_client("trace:read").get("/api/schema/").status_code == 200
    client.force_login(staff_user)
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_schema__closed__a_revoked_or_forged_token_is_refused(client, docs_closed):
    response = client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer forged-token")

    assert response.status_code == 401


def test_schema__public__anyone_reads_it(client, settings):
    settings.PLATFORM_API_DOCS_PUBLIC = True

    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


# --- CORS: off by default ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/config/namespaces/", "/api/v1/events/", "/o/token/", "/healthz"])
def test_cors__off__no_allow_origin_on_answers_nor_preflights(client, api_client, path):
    caller = api_client("admin")

    answered = caller.get(path, HTTP_ORIGIN=HOSTILE_ORIGIN)
    preflight = client.options(
        path,
        HTTP_ORIGIN=HOSTILE_ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )

    for response in (answered, preflight):
        assert not any(name.lower().startswith("access-control-") for name in response.headers), (
            path,
            dict(response.headers),
        )


# --- CSRF on dashboard forms and session writes ---------------------------------------------------


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def dashboard_paths() -> list[str]:
    """Every dashboard route from the resolver (``ui/...``), with sample arguments."""
    paths = {
        "/" + _CONVERTER.sub(lambda match: SAMPLES.get(match.group("kind"), "sample"), route)
        for route in _walk(get_resolver().url_patterns)
        if route.startswith("ui/") and not route.startswith("^")
    }
    return sorted(paths)


@pytest.fixture
def browser(staff_user) -> Client:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    return browser


@pytest.mark.parametrize("path", dashboard_paths())
def test_dashboard_post__without_the_csrf_token__refused(browser, path):
    response = browser.post(path, {"name": "x"})

    assert response.status_code in (403, 405), (path, response.status_code)


def test_dashboard_login_and_logout__without_the_token_403__with_it_accepted(browser, staff_user):
    anonymous = Client(enforce_csrf_checks=True)
    credentials = {"username": "operator", "password": "pw-operator-1"}
    assert anonymous.post("/ui/login/", credentials).status_code == 403
    assert browser.post("/ui/logout/").status_code == 403

    anonymous.get("/ui/login/")  # sets the CSRF cookie, as the form page does
    token = anonymous.cookies["csrftoken"].value
    signed_in = anonymous.post("/ui/login/", {**credentials, "csrfmiddlewaretoken": token})
    assert signed_in.status_code == 302


def test_admin_form__without_the_csrf_token__refused(browser):
    response = browser.post("/admin/auth/user/add/", {"username": "x", "password1": "p", "password2": "p"})

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "method"), [(path, method) for path, method in route_methods() if method != "get"]
)
def test_session_api_write__without_the_csrf_token__refused(browser, path, method):
    response = getattr(browser, method)(path, {}, content_type="application/json")

    # 401: a route that takes bearer tokens only (the session is not a credential there).
    assert response.status_code in (401, 403, 405), (path, method, response.status_code)
    if response.status_code == 403:
        assert "CSRF" in response.json()["error"]["message"]
