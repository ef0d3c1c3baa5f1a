"""/ws/events/: live events matching a filter, resumable with last_event_id without gaps or duplicates."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from event_app.services import event_publish
from platformsite.asgi import application
from tests.sockets import refusal

pytestmark = pytest.mark.django_db(transaction=True)

publish = database_sync_to_async(event_publish)


def auth(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def open_ws(path: str, headers) -> WebsocketCommunicator:
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await ws.connect(timeout=5)
    assert connected, code
    return ws


async def receive_events(ws, count: int) -> list[dict]:
    return [(await ws.receive_json_from(timeout=5))["event"] for _ in range(count)]


def test_ws__filter_at_connect__streams_only_matching_events(issue_token):
    token = issue_token("events:read")

    async def run():
        # given
        ws = await open_ws("/ws/events/?types=order.*&subject_prefix=eu/", auth(token))
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        # when
        await publish(type="user.created", source="/s", subject="eu/1")
        await publish(type="order.created", source="/s", subject="us/1")
        await publish(type="order.created", source="/s", subject="eu/2", data={"n": 1})
        # then
        event = (await receive_events(ws, 1))[0]
        assert (event["type"], event["subject"], event["data"]) == ("order.created", "eu/2", {"n": 1})
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    async_to_sync(run)()


def test_ws__resume_with_last_event_id__replays_then_goes_live_without_duplicates(issue_token):
    token = issue_token("events:read")

    async def run():
        # given: three stored events, the subscriber saw the first
        seen = await publish(type="order.a", source="/s")
        missed = [await publish(type=f"order.{n}", source="/s") for n in ("b", "c")]
        # when
        ws = await open_ws(f"/ws/events/?types=order.*&last_event_id={seen.pk}", auth(token))
        assert (await ws.receive_json_from(timeout=5))["last_event_id"] == seen.pk
        replayed = await receive_events(ws, 2)
        done = await ws.receive_json_from(timeout=5)
        live = await publish(type="order.d", source="/s")
        after = await receive_events(ws, 1)
        # then
        assert [e["id"] for e in replayed] == [e.pk for e in missed]
        assert done == {"type": "replay.done", "last_event_id": missed[-1].pk}
        assert [e["id"] for e in after] == [live.pk]
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    async_to_sync(run)()


def test_ws__subscribed_without_resume_point__names_the_newest_event_to_resume_from(issue_token):
    token = issue_token("events:read")

    async def run():
        # given a stored event, and a subscriber that brings no last_event_id
        stored = await publish(type="order.a", source="/s")
        ws = await open_ws("/ws/events/?types=order.*", auth(token))
        subscribed = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        # when the connection is lost, an event is published, and it resumes from that point
        missed = await publish(type="order.b", source="/s")
        ws = await open_ws(
            f"/ws/events/?types=order.*&last_event_id={subscribed['latest_event_id']}", auth(token)
        )
        await ws.receive_json_from(timeout=5)
        replayed = await receive_events(ws, 1)
        await ws.disconnect()
        # then
        assert subscribed["last_event_id"] is None and subscribed["latest_event_id"] >= stored.pk
        assert [e["id"] for e in replayed] == [missed.pk]

    async_to_sync(run)()


def test_ws__subscribe_message__changes_the_filter(issue_token):
    token = issue_token("events:read")

    async def run():
        ws = await open_ws("/ws/events/?types=nothing.here", auth(token))
        await ws.receive_json_from(timeout=5)
        # when
        await ws.send_json_to({"type": "subscribe", "sources": ["/billing"]})
        assert (await ws.receive_json_from(timeout=5))["filter"]["sources"] == ["/billing"]
        await publish(type="x", source="/other")
        await publish(type="y", source="/billing")
        # then
        assert [e["type"] for e in await receive_events(ws, 1)] == ["y"]
        await ws.send_json_to({"type": "ping"})
        assert (await ws.receive_json_from(timeout=5)) == {"type": "pong"}
        await ws.disconnect()

    async_to_sync(run)()


def test_ws__replay_bound__reports_truncation(issue_token, settings):
    settings.EVENTS_WS_REPLAY_MAX = 2
    token = issue_token("events:read")

    async def run():
        for n in range(4):
            await publish(type=f"t{n}", source="/s")
        ws = await open_ws("/ws/events/?last_event_id=0", auth(token))
        await ws.receive_json_from(timeout=5)
        replayed = await receive_events(ws, 2)
        truncated = await ws.receive_json_from(timeout=5)
        assert truncated == {"type": "replay.truncated", "last_event_id": replayed[-1]["id"]}
        await ws.disconnect()

    async_to_sync(run)()


@pytest.mark.parametrize(("scopes", "code"), [(None, 4401), (("trace:read",), 4403)])
def test_ws__without_events_scope__is_closed(issue_token, scopes, code):
    headers = auth(issue_token(*scopes)) if scopes else []

    assert refusal("/ws/events/", headers) == code


def test_ws__stored_subscription__supplies_the_filter(issue_token):
    from event_app.models import Subscription

    token = issue_token("events:read")
    Subscription.objects.create(name="live-orders", sink="websocket", types=["order.*"])

    async def run():
        ws = await open_ws("/ws/events/?subscription=live-orders", auth(token))
        assert (await ws.receive_json_from(timeout=5))["filter"]["types"] == ["order.*"]
        await publish(type="user.x", source="/s")
        await publish(type="order.x", source="/s")
        assert [e["type"] for e in await receive_events(ws, 1)] == ["order.x"]
        await ws.send_json_to({"type": "subscribe", "subscription": "missing"})
        assert (await ws.receive_json_from(timeout=5))["code"] == "not_found"
        await ws.disconnect()

    async_to_sync(run)()


def test_ws__events_of_a_type_the_policy_denies__left_out_of_replay_and_live(issue_token):
    # a filter by prefix was checked, its events were not: a denied type streamed to the caller
    from auth_app.models import Account
    from auth_app.services import binding_create, role_create, rule_create

    token = issue_token("events:read")
    role = role_create(name="no-refunds")
    rule_create(role=role, resource="events:*", action="read", effect="allow", priority=1)
    rule_create(role=role, resource="events:order.refund", action="read", effect="deny", priority=10)
    binding_create(role=role, account=Account.objects.order_by("-id").first())

    async def run():
        first = await publish(type="order.created", source="/s")
        await publish(type="order.refund", source="/s", data={"card": "4111"})
        ws = await open_ws("/ws/events/?types=order.*&last_event_id=0", auth(token))
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        assert [e["id"] for e in await receive_events(ws, 1)] == [first.pk]
        assert (await ws.receive_json_from(timeout=5))["type"] == "replay.done"
        await publish(type="order.refund", source="/s")
        paid = await publish(type="order.paid", source="/s")
        assert [e["id"] for e in await receive_events(ws, 1)] == [paid.pk]
        assert await ws.receive_nothing(timeout=0.2)
        await ws.disconnect()

    async_to_sync(run)()


@pytest.mark.parametrize(("types", "refused"), [("bill.*", True), ("order.*", False), ("", True)])
def test_ws__a_filter_the_policy_does_not_let_the_caller_read__policy_denied_and_closed(
    issue_token, types, refused
):
    # a rule on the prefix decides a filter by that prefix; every type needs a rule on every type
    from auth_app.models import Account
    from auth_app.services import binding_create, role_create, rule_create

    token = issue_token("events:read")
    role = role_create(name="orders-only")
    rule_create(role=role, resource="events:order.*", action="read", effect="allow", priority=1)
    binding_create(role=role, account=Account.objects.order_by("-id").first())

    async def run():
        ws = await open_ws(f"/ws/events/?types={types}", auth(token))
        messages = []
        while True:
            output = await ws.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                return messages, output["code"]
            messages.append(output["text"])
            if '"subscribed"' in output["text"]:
                await ws.disconnect()
                return messages, None

    messages, code = async_to_sync(run)()
    if refused:
        assert code == 4403 and any('"policy_denied"' in m for m in messages), (messages, code)
    else:
        assert code is None, (messages, code)
