"""Watching: long-poll on resolve, the /ws/config/ websocket, and change events."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connection

from auth_app.models import Account
from auth_app.services import binding_create, role_create, rule_create
from config_app import services
from event_app.models import Event
from platformsite.asgi import application
from tests.config_app.conftest import base


@pytest.mark.django_db
def test_long_poll__nothing_changes__is_304(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.get(base("payments") + "resolve", {"wait": "200ms", "revision": 1})
    assert response.status_code == 304
    # What a 200 would have carried (RFC 9110 §15.4.5): the document's ETag, for a cache to revalidate
    assert response["ETag"] == rw.get(base("payments") + "resolve")["ETag"]


@pytest.mark.django_db
def test_long_poll__revision_already_differs__answers_at_once(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    put_layer("payments", "default", {"a": 2})
    response = rw.get(base("payments") + "resolve", {"wait": "60s", "revision": 1})
    assert response.status_code == 200
    assert response.json()["revision"] == 2


@pytest.mark.django_db
def test_long_poll__bad_wait__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.get(base("payments") + "resolve", {"wait": "soon"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_wait"


@pytest.mark.django_db(transaction=True)
def test_long_poll__change_during_wait__returns_the_new_document(rw, make_namespace, put_layer):
    # Given a watcher at revision 1
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})

    def change() -> None:
        put_layer("payments", "default", {"a": 2})
        connection.close()

    # When another writer changes the layer while it waits
    timer = threading.Timer(0.3, change)
    timer.start()
    response = rw.get(base("payments") + "resolve", {"wait": "30s", "revision": 1})
    timer.join()

    # Then the watch returns the new document
    assert response.status_code == 200
    assert response.json()["data"] == {"a": 2}
    assert response.json()["revision"] == 2


@pytest.mark.django_db
def test_change__publishes_an_event_without_values(django_capture_on_commit_callbacks, rw, make_namespace):
    make_namespace("payments")
    with django_capture_on_commit_callbacks(execute=True):
        rw.put(base("payments") + "layers/prod/values/db/host", {"value": "h"}, format="json")
    event = Event.objects.get(type="config.namespace.changed")
    assert event.source == "/platform/config"
    assert event.subject == "payments/prod"
    assert set(event.data) == {"namespace", "env", "revision", "author"}
    assert event.data["revision"] == 1


# --- websocket ------------------------------------------------------------------------------------


def ws(token: str, script):
    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/config/", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        hello = await communicator.receive_output(timeout=5)
        if hello["type"] == "websocket.close":
            return hello["code"]
        assert json.loads(hello["text"])["type"] == "hello"
        try:
            return await script(communicator)
        finally:
            await communicator.disconnect()

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_ws__subscribe__sends_current_then_each_change(issue_token, make_namespace, put_layer):
    # Given a namespace with a production layer and a watcher subscribed to it
    make_namespace("payments")
    put_layer("payments", "production", {"a": 1})
    token = issue_token("config:read")
    from channels.db import database_sync_to_async

    async def script(communicator):
        await communicator.send_json_to({"type": "subscribe", "namespace": "payments", "env": "production"})
        first = await communicator.receive_json_from(timeout=5)
        # When the namespace's production layer, then the global default layer, change
        await database_sync_to_async(put_layer)("payments", "production", {"a": 2})
        second = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(put_layer)("global", "default", {"g": True})
        third = await communicator.receive_json_from(timeout=5)
        # And a layer it does not read changes: nothing is sent
        await database_sync_to_async(put_layer)("payments", "staging", {"s": 1})
        assert await communicator.receive_nothing(timeout=0.3)
        return first, second, third

    first, second, third = ws(token, script)

    # Then it got the document at subscription and after each change that affects it
    assert (first["type"], first["namespace"], first["env"], first["data"]) == (
        "config",
        "payments",
        "production",
        {"a": 1},
    )
    assert second["data"] == {"a": 2} and second["revision"] > first["revision"]
    assert third["data"] == {"a": 2, "g": True} and third["revision"] > second["revision"]


@pytest.mark.django_db(transaction=True)
def test_ws__token_revoked__the_next_change_closes_it_4401(issue_token, make_namespace, put_layer, settings):
    # Given a watcher subscribed with a token (checked again before every frame)
    settings.PLATFORM_REVOCATION_POLL_SECONDS = 0
    make_namespace("payments")
    put_layer("payments", "production", {"a": 1})
    token = issue_token("config:read")
    from channels.db import database_sync_to_async
    from oauth2_provider.models import AccessToken

    from auth_app.tokens import note_revocation

    def revoke():
        AccessToken.objects.all().delete()
        note_revocation()

    async def script(communicator):
        await communicator.send_json_to({"type": "subscribe", "namespace": "payments", "env": "production"})
        assert (await communicator.receive_json_from(timeout=5))["data"] == {"a": 1}
        # When its token is revoked, and then the document changes
        await database_sync_to_async(revoke)()
        await database_sync_to_async(put_layer)("payments", "production", {"a": 2, "secret-ish": True})
        return await communicator.receive_output(timeout=5)

    # Then the change is not sent: the connection is closed as unauthenticated
    assert ws(token, script) == {"type": "websocket.close", "code": 4401}


@pytest.mark.django_db(transaction=True)
def test_ws__many_watchers_of_one_document__one_resolution_per_change(issue_token, make_namespace, put_layer):
    # Given three watchers of payments/production on this process
    import asyncio
    from unittest import mock

    from channels.db import database_sync_to_async

    from config_app import consumers

    make_namespace("payments")
    put_layer("payments", "production", {"a": 1})
    token = issue_token("config:read")
    resolve = consumers._resolve

    async def script(first):
        others = [
            WebsocketCommunicator(
                application, "/ws/config/", headers=[(b"authorization", f"Bearer {token}".encode())]
            )
            for _ in range(2)
        ]
        for other in others:
            assert (await other.connect(timeout=5))[0]
            await other.receive_json_from(timeout=5)
        watchers = [first, *others]
        for watcher in watchers:
            await watcher.send_json_to({"type": "subscribe", "namespace": "payments", "env": "production"})
            await watcher.receive_json_from(timeout=5)
        # When the layer changes
        with mock.patch.object(consumers, "_resolve", side_effect=resolve) as resolving:
            await database_sync_to_async(put_layer)("payments", "production", {"a": 2})
            pushed = await asyncio.gather(*(w.receive_json_from(timeout=5) for w in watchers))
        for other in others:
            await other.disconnect()
        return resolving.call_count, pushed

    calls, pushed = ws(token, script)

    # Then every watcher got the new document, resolved once for all of them
    assert [message["data"] for message in pushed] == [{"a": 2}] * 3
    assert calls == 1


@pytest.mark.django_db(transaction=True)
def test_ws__unknown_namespace__answers_an_error(issue_token):
    token = issue_token("config:read")

    async def script(communicator):
        await communicator.send_json_to({"type": "subscribe", "namespace": "nowhere", "env": "x"})
        return await communicator.receive_json_from(timeout=5)

    message = ws(token, script)
    assert (message["type"], message["code"]) == ("error", "not_found")


@pytest.mark.django_db(transaction=True)
def test_ws__bad_message__answers_an_error(issue_token):
    token = issue_token("config:read")

    async def script(communicator):
        await communicator.send_json_to({"type": "subscribe", "namespace": "Bad Name"})
        return await communicator.receive_json_from(timeout=5)

    assert ws(token, script)["code"] == "invalid"


@pytest.mark.django_db(transaction=True)
def test_ws__namespace_not_in_policy__is_refused(issue_token, make_namespace):
    make_namespace("payments")
    make_namespace("billing")
    token = issue_token("config:read")
    account = Account.objects.order_by("-id").first()
    role = role_create(name="payments-readers")
    rule_create(role=role, resource="config:payments/*", action="read", effect="allow", priority=0)
    binding_create(role=role, account=account)

    async def script(communicator):
        await communicator.send_json_to({"type": "subscribe", "namespace": "billing", "env": "default"})
        refused = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "subscribe", "namespace": "payments", "env": "default"})
        accepted = await communicator.receive_json_from(timeout=5)
        return refused, accepted

    refused, accepted = ws(token, script)
    assert (refused["type"], refused["code"]) == ("error", "policy_denied")
    assert accepted["type"] == "config"


@pytest.mark.django_db(transaction=True)
def test_ws__without_config_scope__is_closed_4403(issue_token):
    assert ws(issue_token("trace:read"), None) == 4403


def test_notify_watchers__without_channel_layer__does_nothing(settings):
    settings.CHANNEL_LAYERS = {}
    services.notify_watchers("payments", "default", 1)
