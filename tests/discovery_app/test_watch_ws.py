"""The websocket watch: changes of the chosen services, as they commit."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from discovery_app import services
from tests.sockets import bearer, greeted, refusal

pytestmark = pytest.mark.django_db(transaction=True)


def register(node_id: str, service: str = "orders") -> None:
    services.node_register(node_id=node_id, service=service, address="10.0.0.1", port=80)


async def _connect(token: str) -> WebsocketCommunicator:
    return await greeted("/ws/discovery/", token)


def test_ws__subscribed_service__streams_its_changes(issue_token):
    token = issue_token("discovery:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"]})
        subscribed = await ws.receive_json_from(timeout=5)
        # when a node of the watched service and one of another service register
        await sync_to_async(register)("billing-1", "billing")
        await sync_to_async(register)("orders-1")
        change = await ws.receive_json_from(timeout=5)
        nothing_else = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return subscribed, change, nothing_else

    subscribed, change, nothing_else = async_to_sync(run)()
    assert subscribed == {"type": "subscribed", "services": ["orders"], "indexes": {"orders": 0}}
    assert change["type"] == "change" and change["service"] == "orders" and change["index"] == 1
    assert change["results"][0]["action"] == "create"
    assert change["results"][0]["node"]["id"] == "orders-1"
    assert change["document"]["versions"][0]["nodes"][0]["id"] == "orders-1"
    assert nothing_else


def test_ws__star_subscription__gets_every_service_once(issue_token):
    token = issue_token("discovery:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["*", "orders"]})
        await ws.receive_json_from(timeout=5)
        await sync_to_async(register)("orders-1")
        await sync_to_async(register)("billing-1", "billing")
        first = await ws.receive_json_from(timeout=5)
        second = await ws.receive_json_from(timeout=5)
        nothing_else = await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return first, second, nothing_else

    first, second, nothing_else = async_to_sync(run)()
    assert [first["service"], second["service"]] == ["orders", "billing"]
    assert nothing_else


def test_ws__since__replays_history(issue_token):
    token = issue_token("discovery:read")
    register("orders-1")
    register("orders-2")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"], "since": {"orders": 1}})
        subscribed = await ws.receive_json_from(timeout=5)
        replay = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return subscribed, replay

    subscribed, replay = async_to_sync(run)()
    assert subscribed["indexes"] == {"orders": 2}
    assert replay["type"] == "replay" and replay["result"]["index"] == 2


def test_ws__bad_subscription__is_an_error_message(issue_token):
    token = issue_token("discovery:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": "orders"})
        answer = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return answer

    assert async_to_sync(run)()["code"] == "invalid"


def test_ws__name_with_trailing_newline__is_an_error_message(issue_token):
    token = issue_token("discovery:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders\n"]})
        answer = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return answer

    assert async_to_sync(run)()["code"] == "invalid"


@pytest.mark.parametrize("since", [{"orders": "abc"}, {"orders": -1}, {"orders": True}, [12]])
def test_ws__since_not_indexes__is_an_error_and_subscribes_nothing(issue_token, since):
    token = issue_token("discovery:read")

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"], "since": since})
        refused = await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "ping"})
        after = await ws.receive_json_from(timeout=5)  # the connection stays open, nothing else came
        await ws.disconnect()
        return refused, after

    refused, after = async_to_sync(run)()
    assert (refused["type"], refused["code"]) == ("error", "invalid") and "since" in refused["message"]
    assert after == {"type": "pong"}


def test_ws__without_discovery_scope__is_closed_4403(issue_token):
    token = issue_token("config:read")

    assert refusal("/ws/discovery/", bearer(token)) == 4403


def test_ws__policy_denied_service__is_refused(issue_token, django_capture_on_commit_callbacks):
    from auth_app import services as auth_services
    from auth_app.models import Account

    token = issue_token("discovery:read")
    account = Account.objects.get(name="svc-1")
    role = auth_services.role_create(name="orders-only")
    auth_services.rule_create(role=role, resource="discovery:orders", action="read")
    auth_services.binding_create(role=role, account=account)

    async def run():
        ws = await _connect(token)
        await ws.send_json_to({"type": "subscribe", "services": ["billing"]})
        denied = await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"]})
        allowed = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return denied, allowed

    denied, allowed = async_to_sync(run)()
    assert denied["code"] == "policy_denied"
    assert allowed["type"] == "subscribed"
