"""Fixtures shared by every test: API clients holding real OAuth2 tokens, and outsiders."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from django.core.cache import cache
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from auth_app.services import service_account_create
from platformsite import localstate

# Property tests draw the same examples on every run by default, so the suite (and CI) passes or
# fails on the code alone; `HYPOTHESIS_PROFILE=hunt` draws new random examples (500 where a test
# sets no count of its own) to look for new failures: keep each one found as a regression test.
hypothesis_settings.register_profile("default", derandomize=True)
hypothesis_settings.register_profile("hunt", derandomize=False, max_examples=500)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    localstate.reset_all()
    yield
    localstate.reset_all()


@pytest.fixture
def service_account(db) -> Callable[..., tuple[str, str]]:
    """Create a service account with the given scopes; returns (client_id, client_secret)."""
    counter = iter(range(1, 10_000))

    def make(*scopes: str, name: str | None = None) -> tuple[str, str]:
        account, secret = service_account_create(name=name or f"svc-{next(counter)}", scopes=list(scopes))
        return account.application.client_id, secret

    return make


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def issue_token(client, service_account) -> Callable[..., str]:
    """Get a real access token from /o/token/ for a new account holding ``scopes``."""

    def issue(*scopes: str) -> str:
        client_id, secret = service_account(*scopes)
        data = {"grant_type": "client_credentials"}
        if scopes:
            data["scope"] = " ".join(scopes)
        response = client.post("/o/token/", data, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    return issue


@pytest.fixture
def api_client(issue_token) -> Callable[..., APIClient]:
    """An API client authenticated with a bearer token holding exactly ``scopes``."""

    def make(*scopes: str) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(*scopes)}")
        return api

    return make


@pytest.fixture
def ruled_client(api_client) -> Callable[..., APIClient]:
    """An API client holding ``scopes`` whose account is bound to a role carrying ``rules``
    (each ``{resource, action, effect?, priority?}``): the policy decides, not the scope alone."""
    from auth_app.models import Account
    from auth_app.services import binding_create, role_create, rule_create

    counter = iter(range(1, 10_000))

    def make(*scopes: str, rules: list[dict]) -> APIClient:
        caller = api_client(*scopes)
        role = role_create(name=f"ruled-{next(counter)}")
        for rule in rules:
            rule_create(role=role, **rule)
        binding_create(role=role, account=Account.objects.order_by("-id").first())
        return caller

    return make


@pytest.fixture
def outsider(api_client) -> APIClient:
    """A caller with a valid token whose only scope belongs to no service under test."""
    return api_client("trace:read")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("operator", password="pw-operator-1", is_staff=True)


@pytest.fixture
def asgi_platform(tmp_path):
    """The whole platform under uvicorn (websockets), with an admin service account and the operator."""
    from tests.servers import asgi_platform as serve

    with serve(tmp_path) as platform:
        yield platform


@pytest.fixture
def cli_as(live_server, service_account, monkeypatch, capsys):
    """``cli_as("config", "admin")`` -> ``run(*args) -> (exit code, parsed stdout, stderr)``.

    Runs ``platform <service> ...`` in process against the live server as a new service account
    holding ``scopes``; stdout is parsed as JSON where it is JSON.
    """
    import json

    from platformsite.cli import main

    def make(service: str, *scopes: str):
        client_id, secret = service_account(*scopes)
        monkeypatch.setenv("PLATFORM_URL", live_server.url)
        monkeypatch.setenv("PLATFORM_CLIENT_ID", client_id)
        monkeypatch.setenv("PLATFORM_CLIENT_SECRET", secret)

        def run(*args: str) -> tuple[int, object, str]:
            code = main([service, *args])
            out, err = capsys.readouterr()
            try:
                parsed = json.loads(out) if out.strip() else None
            except json.JSONDecodeError:
                parsed = out.strip()
            return code, parsed, err

        return run

    return make
