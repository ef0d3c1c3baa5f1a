"""Secrets never reach a non-admin: config secret values, webhook signing secrets, database DSNs and
service account secrets, once stored, appear in no API answer (every GET route walked from the
resolver with the stored names), no dashboard page, no admin page, no config websocket message, no
event and no log line for a caller holding every scope but ``admin`` and ``config:secrets``."""

from __future__ import annotations

import itertools
import json
import logging
import re

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.admin import site
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from event_app.models import Event
from platformsite.asgi import application
from platformsite.services import all_scopes

pytestmark = pytest.mark.django_db
CONFIG_SECRET = "cfg-Secret-7f3a9"
WEBHOOK_SECRET = "whsec-Secret-2b8c1"
DSN_PASSWORD = "dsn-Secret-91d4e"
#: The secrets stored (the service account's, generated, is added when it is created).
SECRETS = [CONFIG_SECRET, WEBHOOK_SECRET, DSN_PASSWORD]
#: Values the path converters take, the stored resources' names first.
ARGUMENTS = {
    "ns": ["payments"],
    "env": ["default"],
    "name": ["hooks", "ext", "payments"],
    "path": ["db/password", "db"],
    "number": ["1"],
    "pk": ["1"],
    "database": ["ext"],
}
SUBSCRIPTIONS = "/api/v1/events/subscriptions/"
LAYER = "/api/v1/config/namespaces/payments/layers/default/"
_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def concrete(route: str) -> list[str]:
    names = [match.group("name") for match in _CONVERTER.finditer(route)]
    choices = [ARGUMENTS.get(name, ["sample"]) for name in names]
    paths = []
    for values in itertools.product(*choices):
        filled = iter(values)
        paths.append("/" + _CONVERTER.sub(lambda _match, filled=filled: next(filled), route))
    return paths


def readable_paths() -> list[str]:
    paths: set[str] = set()
    for route, callback in _walk(get_resolver().url_patterns):
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if route.startswith("^") or (view is not None and not hasattr(view, "get")):
            continue
        if route.startswith(("api/", "v1/", "ui/")):
            paths.update(concrete(route))
    return sorted(paths)


@pytest.fixture
def stored(api_client, caplog) -> None:
    """One secret of each kind, stored through the API by an admin."""
    caplog.set_level(logging.DEBUG)
    admin = api_client("admin")
    dsn = f"postgresql://u:{DSN_PASSWORD}@127.0.0.1:1/x"
    writes = [
        ("post", "/api/v1/config/namespaces/", {"name": "payments", "secret_paths": ["db/password"]}),
        ("post", SUBSCRIPTIONS, {"name": "hooks", "url": "http://127.0.0.1:9/h", "secret": WEBHOOK_SECRET}),
        ("post", "/api/v1/db/databases/", {"name": "ext", "backend": "postgresql", "dsn": dsn}),
        ("put", LAYER, {"data": {"db": {"host": "h", "password": CONFIG_SECRET}}}),
    ]
    for method, url, body in writes:
        assert getattr(admin, method)(url, body, format="json").status_code in (200, 201), url
    account = admin.post(
        "/api/v1/auth/accounts/", {"name": "ops-bot", "scopes": ["config:read"]}, format="json"
    )
    assert account.status_code == 201
    SECRETS[3:] = [account.json()["client_secret"]]
    # the secret is there for an admin: the walk below could find it
    resolved = admin.get("/api/v1/config/namespaces/payments/resolve")
    assert CONFIG_SECRET in resolved.content.decode()


def leaked(body: bytes | str) -> list[str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return [secret for secret in SECRETS if secret in text]


def test_every_get_route__a_non_admin_with_every_other_scope__sees_no_secret(stored, api_client):
    scopes = sorted(set(all_scopes()) - {"admin", "config:secrets"})
    caller = api_client(*scopes)
    answered = 0
    for path in readable_paths():
        if not path.startswith(("/api/", "/v1/")):
            continue
        response = caller.get(path)
        answered += response.status_code == 200
        assert not leaked(response.content), path
    extra = caller.get("/api/v1/config/namespaces/payments/resolve", {"path": "db/password"})
    assert not leaked(extra.content)
    assert answered > 20  # the walk reached the stored resources, not only 404s


def test_every_dashboard_page__a_staff_user__sees_no_secret(stored, staff_user):
    browser = Client()
    browser.force_login(staff_user)
    for path in readable_paths():
        if path.startswith("/ui/"):
            assert not leaked(browser.get(path).content), path


def test_every_admin_page__even_a_superuser__sees_no_secret(stored, admin_client):
    for model, _admin in site._registry.items():
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert not leaked(admin_client.get(changelist).content), changelist
        for pk in model._default_manager.values_list("pk", flat=True)[:5]:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])
            assert not leaked(admin_client.get(change).content), change


def test_events_and_logs__carry_no_secret(stored, caplog):
    assert len(SECRETS) == 4
    for event in Event.objects.all():
        assert not leaked(str(event.data) + str(event.extensions) + event.subject), event.type
    assert not leaked(caplog.text)


def watch_config(token: str) -> dict:
    """The first document /ws/config/ sends a watcher of payments/default holding ``token``."""

    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/config/", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        connected, _code = await communicator.connect(timeout=5)
        assert connected
        try:
            assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
            await communicator.send_json_to({"type": "subscribe", "namespace": "payments", "env": "default"})
            return await communicator.receive_json_from(timeout=5)
        finally:
            await communicator.disconnect()

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_config_websocket__a_watcher_without_config_secrets__sees_the_mask(stored, issue_token):
    watched = watch_config(issue_token("config:read"))
    revealed = watch_config(issue_token("config:read", "config:secrets"))

    assert watched["data"]["db"] == {"host": "h", "password": "***"}
    assert not leaked(json.dumps(watched))
    assert revealed["data"]["db"]["password"] == CONFIG_SECRET
