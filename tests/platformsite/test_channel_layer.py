"""The Redis channel layer (distributed mode) over a real Redis: a consumer waiting longer than
the default socket timeout of recent redis-py (5 s in 8.2) for its next message still gets it.
channels_redis waits in BZPOPMIN for up to 5 s at a time; with the client's default timeout the
read gave up at the same moment and every idle websocket was closed after 5 s."""

from __future__ import annotations

import asyncio
import os

import pytest
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from channels.utils import await_many_dispatch


def needs_redis(test):
    test = pytest.mark.redis(test)
    without = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
    return without(test)


def fresh_layer():
    """The configured layer, not the process's: that one keeps pools of other tests' loops."""
    return channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)


@needs_redis
def test_receive__idle_longer_than_the_socket_timeout__gets_the_message():
    async def scenario():
        layer = fresh_layer()
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


def _stop_a_consumer_as_it_starts_receiving(layer, delay: float) -> bool:
    """What a consumer does when a handler raises: its pending receive is cancelled and awaited.
    True when the consumer ended (with the handler's error); a hung one never would."""

    async def scenario():
        channel = await layer.new_channel()

        async def client_frame():
            await asyncio.sleep(delay)
            return {"type": "frame"}

        async def handler(message):
            raise KeyError("the handler failed")

        consumer = asyncio.ensure_future(
            await_many_dispatch([client_frame, lambda: layer.receive(channel)], handler)
        )
        done, _ = await asyncio.wait([consumer], timeout=10)
        if not done:
            consumer.cancel()  # the test fails; this run's loop still ends
            return False
        with pytest.raises(KeyError):
            consumer.result()
        return True

    return asyncio.run(scenario())


@needs_redis
def test_receive__cancelled_as_it_starts__ends():
    # A cancellation arriving while redis-py wrote a command through asyncio.wait_for (with a
    # socket timeout set) was lost on Python 3.11, and the receive went on waiting for a message
    # that never came, holding the consumer open.
    layer = fresh_layer()
    assert all(_stop_a_consumer_as_it_starts_receiving(layer, 0.001 * (attempt % 3)) for attempt in range(6))
