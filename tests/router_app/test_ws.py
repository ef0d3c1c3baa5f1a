"""/ws/router/: route changes of the chosen services are pushed as they commit."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from router_app import services
from tests.sockets import bearer, greeted, refusal

pytestmark = pytest.mark.django_db(transaction=True)


def add_rule(service: str, version: str = "2.0") -> None:
    services.rule_save(service=service, version=version, key="beta", value="true", weight=10, priority=0)


async def _connect(token: str) -> WebsocketCommunicator:
    return await greeted("/ws/router/", token)


def test_ws__a_watched_service__gets_its_changes_only(issue_token):
    token = issue_token("router:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"]})
        subscribed = await ws.receive_json_from(timeout=5)
        await sync_to_async(add_rule)("billing")
        await sync_to_async(add_rule)("orders")
        change = await ws.receive_json_from(timeout=5)
        nothing_else = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return subscribed, change, nothing_else

    subscribed, change, nothing_else = async_to_sync(run)()
    assert subscribed == {"type": "subscribed", "services": ["orders"], "revisions": {"orders": 0}}
    assert change == {"type": "change", "service": "orders", "revision": 1, "why": "rules"}
    assert nothing_else


def test_ws__star__gets_every_service_once(issue_token):
    token = issue_token("router:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["*", "orders"]})
        await ws.receive_json_from(timeout=5)
        await sync_to_async(add_rule)("orders")
        change = await ws.receive_json_from(timeout=5)
        nothing_else = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return change, nothing_else

    change, nothing_else = async_to_sync(run)()
    assert change["service"] == "orders" and nothing_else


def test_ws__bad_messages_and_denied_services(issue_token):
    from auth_app import services as auth_services
    from auth_app.models import Account

    token = issue_token("router:read")
    role = auth_services.role_create(name="billing-only")
    auth_services.rule_create(role=role, resource="router:billing", action="*")
    auth_services.binding_create(role=role, account=Account.objects.order_by("-id").first())

    async def run():
        ws = await _connect(token)
        answers = []
        for message in (
            {"type": "subscribe", "services": "orders"},
            {"type": "subscribe", "services": ["bad/name"]},
            {"type": "subscribe", "services": ["orders"]},
            {"type": "dance"},
        ):
            await ws.send_json_to(message)
            answers.append((await ws.receive_json_from(timeout=5))["code"])
        await ws.disconnect()
        return answers

    assert async_to_sync(run)() == ["invalid", "invalid", "policy_denied", "unknown_message"]


def test_ws__without_the_read_scope__is_closed_4403(issue_token):
    token = issue_token("discovery:read")

    assert refusal("/ws/router/", bearer(token)) == 4403


def test_ws__unsubscribe__stops_that_service_only(issue_token):
    """The kit's watch protocol: unsubscribing one service keeps the others' changes coming."""
    token = issue_token("router:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders", "billing"]})
        assert (await ws.receive_json_from(timeout=5))["type"] == "subscribed"
        await ws.send_json_to({"type": "unsubscribe", "services": ["orders"]})
        answer = await ws.receive_json_from(timeout=5)
        await sync_to_async(add_rule)("orders")
        await sync_to_async(add_rule)("billing")
        change = await ws.receive_json_from(timeout=5)
        nothing_else = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return answer, change, nothing_else

    answer, change, nothing_else = async_to_sync(run)()
    assert answer == {"type": "unsubscribed", "services": ["orders"]}
    assert change["service"] == "billing" and nothing_else
