"""``/ws/trace/``: summaries of ingested traces, filtered by service and errors."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from platformsite.asgi import application
from tests.trace_app.conftest import hex_id, zipkin_span
from trace_app.decoding.zipkin import decode_json
from trace_app.services import ingest_spans

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def ingest(spans):
    import json

    return ingest_spans(decode_json(json.dumps(spans).encode()))


def test_ws__streams_summaries_matching_the_filter(issue_token):
    token = issue_token("trace:read")
    quiet, failing = hex_id(8), hex_id(8)

    async def run():
        ws = WebsocketCommunicator(
            application,
            "/ws/trace/?service=api&errors=true",
            headers=[(b"authorization", f"Bearer {token}".encode())],
        )
        connected, _ = await ws.connect(timeout=5)
        assert connected
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        await ingest(
            [
                zipkin_span(quiet, hex_id(8), "api"),
                zipkin_span(hex_id(8), hex_id(8), "web", tags={"error": "x"}),
            ]
        )
        await ingest([zipkin_span(failing, hex_id(8), "api", tags={"error": "boom"}, duration=2500)])
        message = await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "ping"})
        pong = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message, pong

    message, pong = async_to_sync(run)()
    assert message["type"] == "traces"
    [summary] = message["traces"]
    assert summary["trace_id"].endswith(failing) and summary["error"] and summary["duration"] == 2500
    assert summary["services"] == ["api"] and pong == {"type": "pong"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("errors=maybe", "errors: true or false (or 1/0, yes/no)."),
        # a search refuses such a service; the socket subscribed to it
        ("service=" + "s" * 129, "service: Ensure this field has no more than 128 characters."),
        ("service=a%00b", "service: Null characters are not allowed."),
    ],
)
def test_ws__a_bad_filter_is_refused_and_closes(issue_token, query, message):
    token = issue_token("trace:read")

    async def run():
        ws = WebsocketCommunicator(
            application, f"/ws/trace/?{query}", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        connected, _ = await ws.connect(timeout=5)
        frame = await ws.receive_json_from(timeout=5)
        closed = await ws.receive_output(timeout=5)
        await ws.disconnect()
        return connected, frame, closed

    connected, frame, closed = async_to_sync(run)()
    assert connected
    assert frame == {"type": "error", "code": "invalid", "message": message}
    assert closed == {"type": "websocket.close", "code": 4400}


@pytest.fixture
def frontend_only_token(issue_token):
    """A trace:read token whose account a rule narrows to reading trace:frontend."""
    from auth_app.models import Account
    from auth_app.services import binding_create, role_create, rule_create

    token = issue_token("trace:read")
    role = role_create(name="frontend-only")
    rule_create(role=role, resource="trace:frontend", action="read")
    binding_create(role=role, account=Account.objects.order_by("-id").first())
    return token


def first_frames(token: str, query: str) -> list:
    async def run():
        ws = WebsocketCommunicator(
            application, f"/ws/trace/{query}", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        connected, _ = await ws.connect(timeout=5)
        assert connected
        frames = [await ws.receive_json_from(timeout=5)]
        if frames[0]["type"] == "error":
            frames.append(await ws.receive_output(timeout=5))
        await ws.disconnect()
        return frames

    return async_to_sync(run)()


def test_ws__a_service_the_policy_refuses_a_search_of_is_refused_too(frontend_only_token):
    frame, closed = first_frames(frontend_only_token, "?service=checkout")  # it was streamed
    assert (frame["type"], frame["code"]) == ("error", "policy_denied")
    assert closed == {"type": "websocket.close", "code": 4403}


def test_ws__a_service_the_policy_allows_subscribes(frontend_only_token):
    assert first_frames(frontend_only_token, "?service=frontend") == [
        {"type": "subscribed", "service": "frontend", "errors": False}
    ]


def test_ws__without_a_filter_only_traces_of_services_the_caller_may_read_are_sent(frontend_only_token):
    mixed, own = hex_id(8), hex_id(8)

    async def run():
        ws = WebsocketCommunicator(
            application, "/ws/trace/", headers=[(b"authorization", f"Bearer {frontend_only_token}".encode())]
        )
        assert (await ws.connect(timeout=5))[0]
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        await ingest([zipkin_span(hex_id(8), hex_id(8), "checkout")])  # not the caller's: not sent
        await ingest([zipkin_span(mixed, hex_id(8), "frontend"), zipkin_span(mixed, hex_id(8), "checkout")])
        await ingest([zipkin_span(own, hex_id(8), "frontend")])
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message

    message = async_to_sync(run)()
    assert [t["trace_id"][-16:] for t in message["traces"]] == [own]
