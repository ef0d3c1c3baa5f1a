"""The Redis channel layer (distributed mode) over a real Redis: a consumer waiting longer than
the default socket timeout of recent redis-py (5 s in 8.2) for its next message still gets it.
channels_redis waits in BZPOPMIN for up to 5 s at a time; with the client's default timeout the
read gave up at the same moment and every idle websocket was closed after 5 s."""

from __future__ import annotations

import asyncio
import os

import pytest
from channels.layers import get_channel_layer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)"),
]


def test_receive__idle_longer_than_the_socket_timeout__gets_the_message():
    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()

        async def send_later():
            await asyncio.sleep(7)
            await layer.send(channel, {"type": "late"})

        sender = asyncio.create_task(send_later())
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout=20)
        finally:
            await sender
            await layer.flush()

    assert asyncio.run(scenario())["type"] == "late"
