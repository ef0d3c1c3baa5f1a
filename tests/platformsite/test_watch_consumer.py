"""The kit's consumers: the channel groups a watch subscription joins by default, and a socket
closed with 1013 when the database or Redis cannot be reached."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from platformsite.cache import redis_guard
from platformsite.consumers import ServiceWatchConsumer
from router_app.consumers import RouterConsumer
from tests.servers import free_port
from tests.sockets import greeted


class _Watch(ServiceWatchConsumer):
    service = "demo"


def test_default_groups__every_service_and_one_service():
    watch = _Watch()
    assert watch.groups_of("*") == ["demo.all"]
    assert watch.groups_of("orders") == ["demo.service.orders"]


def test_default_groups__a_long_name_stays_within_the_channel_layers_limit():
    groups = _Watch().groups_of("a" * 200) + _Watch().groups_of("a" * 199 + "b")
    assert all(len(group) < 100 for group in groups)
    assert groups[0] != groups[1]


on_db = pytest.mark.django_db(transaction=True)


async def _subscribe(token: str) -> dict:
    communicator = await greeted("/ws/router/", token)
    await communicator.send_json_to({"type": "subscribe", "services": ["orders"]})
    # The consumer ends, having closed the socket or raising its error (the communicator's
    # receive_output would only see an error once its own wait gave up).
    await communicator.wait(timeout=30)
    return await communicator.receive_output()


def _outage_logged(caplog) -> bool:
    records = [r for r in caplog.records if r.name == "platformsite.consumers"]
    one_warning = [(r.levelname, r.exc_info) for r in records] == [("WARNING", None)]
    return one_warning and "1013" in records[0].getMessage()


@on_db
def test_an_unreachable_database_closes_the_socket_with_try_again_later(issue_token, monkeypatch, caplog):
    async def database_down(self, names, content):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(RouterConsumer, "subscribed", database_down)
    closed = async_to_sync(_subscribe)(issue_token("router:read"))
    assert closed == {"type": "websocket.close", "code": 1013}
    assert _outage_logged(caplog)


@on_db
def test_an_unreachable_redis_closes_the_socket_with_try_again_later(issue_token, monkeypatch, caplog):
    async def redis_down(self, group, channel):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(type(get_channel_layer()), "group_add", redis_down)
    closed = async_to_sync(_subscribe)(issue_token("router:read"))
    assert closed == {"type": "websocket.close", "code": 1013}
    assert _outage_logged(caplog)


class _HungGroups:
    """The test's channel layer, its ``group_add`` waiting as on a Redis that stopped answering
    (channels-redis has no timeout of its own)."""

    def __init__(self, layer) -> None:
        self._layer, self.tried = layer, 0

    def __getattr__(self, name: str):
        return getattr(self._layer, name)

    async def group_add(self, group, channel):
        self.tried += 1
        await asyncio.sleep(3600)


@on_db
def test_a_redis_that_stops_answering__closes_the_socket_after_its_timeout__the_next_at_once(
    issue_token, monkeypatch, settings, caplog
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.PLATFORM_REDIS_TIMEOUT = 0.3
    settings.PLATFORM_REDIS_DOWN_SECONDS = 60
    hung = _HungGroups(get_channel_layer())
    monkeypatch.setattr("channels.consumer.get_channel_layer", lambda alias=None: hung)
    token = issue_token("router:read")
    assert async_to_sync(_subscribe)(token) == {"type": "websocket.close", "code": 1013}
    assert _outage_logged(caplog)
    caplog.clear()
    assert async_to_sync(_subscribe)(token) == {"type": "websocket.close", "code": 1013}
    assert _outage_logged(caplog)
    assert hung.tried == 1  # the second was refused without asking the layer: Redis known down
    assert redis_guard().down_until > 0


@on_db
def test_other_errors_still_raise(issue_token, monkeypatch):
    async def broken(self, names, content):
        raise KeyError("a bug, not an outage")

    monkeypatch.setattr(RouterConsumer, "subscribed", broken)
    with pytest.raises(KeyError):
        async_to_sync(_subscribe)(issue_token("router:read"))
