"""The distributed mode's channel layer: channels-redis, with a receive that ends when cancelled.

A consumer that stops (its client went away, or a handler raised) cancels its pending
``receive`` and waits for it to end.  On Python 3.11 that cancellation can be lost: redis-py
writes each command through ``asyncio.wait_for``, and 3.11's ``wait_for`` returns the result
instead of raising when the cancellation arrives just as the write completes.  channels-redis
then carries on waiting for the next message (a blocking pop, five seconds at a time, for as
long as no message comes), and the consumer never finishes: its websocket is not closed, its
task and Redis connection linger.  Python 3.12 rewrote ``wait_for``; 3.11 is what Debian 12
ships.

Here the receive runs in a task of its own, and a cancelled caller cancels that task again
until it has ended; a second cancellation reaches it while it waits on Redis, where nothing
swallows it.
"""

from __future__ import annotations

import asyncio

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class RedisChannelLayer(_RedisChannelLayer):
    async def receive(self, channel: str) -> dict:
        pending = asyncio.ensure_future(super().receive(channel))
        try:
            return await asyncio.shield(pending)
        except asyncio.CancelledError:
            await cancel_until_done(pending)
            raise


async def cancel_until_done(task: asyncio.Future, poll: float = 0.1) -> None:
    """Cancel ``task`` and wait for it, cancelling it again while a cancellation gets lost."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=poll)
    if not task.cancelled():
        task.exception()  # retrieved: an error while ending is not the caller's to see
