"""Websockets: authenticated by bearer token or session, closed 4401/4403 otherwise."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore

from platformsite.asgi import application
from tests.sockets import refusal

pytestmark = pytest.mark.django_db(transaction=True)


async def _open(path: str, headers=None):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


def connect(path: str, headers=None) -> tuple[bool, object, list]:
    async def run():
        communicator, connected, code = await _open(path, headers)
        messages = []
        if connected:
            messages.append(await communicator.receive_json_from(timeout=5))
            await communicator.send_json_to({"type": "ping"})
            messages.append(await communicator.receive_json_from(timeout=5))
            await communicator.disconnect()
        return connected, code, messages

    return async_to_sync(run)()


def test_ws__without_credentials__is_closed_4401():
    assert refusal("/ws/discovery/") == 4401


def test_ws__token_without_scope__is_closed_4403(issue_token):
    token = issue_token("config:read")
    assert refusal("/ws/discovery/", [(b"authorization", f"Bearer {token}".encode())]) == 4403


def test_ws__bearer_header__is_accepted_and_answers(issue_token):
    token = issue_token("discovery:read")
    connected, _, messages = connect("/ws/discovery/", [(b"authorization", f"Bearer {token}".encode())])
    assert connected
    assert messages[0]["type"] == "hello"
    assert messages[0]["subject"].startswith("service:")
    assert messages[1]["type"] == "pong"


def test_ws__access_token_query__is_accepted(issue_token):
    token = issue_token("discovery:read")
    connected, _, _ = connect(f"/ws/discovery/?access_token={token}")
    assert connected


def test_ws__invalid_token__is_closed_4401():
    assert refusal("/ws/discovery/", [(b"authorization", b"Bearer nope")]) == 4401


def test_ws__staff_session__is_accepted():
    user = get_user_model().objects.create_user("ops", password="pw-ops-12345", is_staff=True)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.save()
    cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()
    connected, _, messages = connect(
        "/ws/discovery/", [(b"cookie", cookie), (b"origin", b"http://127.0.0.1")]
    )
    assert connected
    assert messages[0]["subject"] == "user:ops"


def test_ws__foreign_browser_origin__is_refused(issue_token):
    token = issue_token("discovery:read")
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"origin", b"https://evil.example.com")]
    connected, _, _ = connect("/ws/discovery/", headers)
    assert not connected


@pytest.mark.parametrize("frame", [{"text": "not json"}, {"text": "[" * 5000}, {"bytes": b"\x00"}])
def test_ws__frame_that_is_not_json_text__is_a_parse_error_and_the_connection_stays(issue_token, frame):
    token = issue_token("discovery:read")

    async def run():
        communicator, connected, _ = await _open(
            "/ws/discovery/", [(b"authorization", f"Bearer {token}".encode())]
        )
        assert connected
        await communicator.receive_json_from(timeout=5)  # hello
        await communicator.send_input({"type": "websocket.receive", **frame})
        error = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "ping"})
        pong = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return error, pong

    error, pong = async_to_sync(run)()
    assert error == {"type": "error", "code": "parse_error", "message": "Send JSON text messages."}
    assert pong["type"] == "pong"


@pytest.mark.django_db(transaction=True)
def test_ws__messages__dispatched_without_a_thread_hop_each(issue_token):
    # Channels closes old database connections in a worker thread before every message it
    # dispatches; the platform's consumers leave that to database_sync_to_async.
    from unittest import mock

    from config_app import services

    services.namespace_create(name="payments")
    token = issue_token("config:read")

    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/config/", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "subscribe", "namespace": "payments"})
        document = await communicator.receive_json_from(timeout=5)  # read through the database
        await communicator.send_json_to({"type": "ping"})
        pong = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return document, pong

    with mock.patch("channels.consumer.aclose_old_connections") as closing:
        document, pong = async_to_sync(run)()

    assert (document["type"], pong["type"]) == ("config", "pong")
    assert closing.call_count == 0
