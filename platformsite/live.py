"""Pushing stored items to a websocket group through the channel layer, without waiting on it.

With a networked channel layer (channels-redis) a push is handed to one sender thread per process
and group, which owns an event loop and sends in order: the request that stored the items does not
wait for the channel layer (they are already durable; a subscriber that misses a push resumes
from the store).  A push the layer refuses is tried again, for up to ``RETRY_SECONDS``.  Pushes
that queue up while the thread sends go out together, as one group message of up to ``chunk``
items.  The in-memory layer (embedded mode, one process) is sent to directly.  Events
(``event_app.live``) and traces (``trace_app.live``) push this way.

:func:`notify` sends one message at once instead, for the change notices of config, discovery,
the router and the monitor, waiting at most ``PLATFORM_REDIS_TIMEOUT`` for the layer (it has no
timeout of its own: its consumers wait for messages on the same connections), and not at all while
Redis is known down; :func:`bounded` is that bound, which websocket consumers' group joins share.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from redis.exceptions import TimeoutError as RedisTimeoutError

from platformsite import localstate
from platformsite.cache import RedisDown, redis_guard

log = logging.getLogger(__name__)

#: A push the layer refused is tried again after 0.1 s, doubling to 2 s, for up to 30 s.
RETRY_FIRST_WAIT, RETRY_MAX_WAIT, RETRY_SECONDS = 0.1, 2.0, 30.0


def notify(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` now, from synchronous code after a commit; a failure is logged,
    never raised (the change it announces is stored)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(bounded)(layer, layer.group_send, group, message)
    except RedisDown as exc:
        log.warning("%s: not notified: %s", group, exc)
    except RedisTimeoutError:
        log.warning("%s: not notified: Redis did not answer in %s s", group, settings.PLATFORM_REDIS_TIMEOUT)
    except Exception:
        log.exception("%s: not notified", group)


async def bounded(layer: Any, call: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """``await call(*args)``, one call of ``layer`` (``group_send``, ``group_add``...) that waits
    for its Redis at most ``PLATFORM_REDIS_TIMEOUT``, and not at all while Redis is known down
    (:class:`~platformsite.cache.RedisDown`); a timeout raises redis-py's ``TimeoutError`` and
    marks Redis down. Both are among ``CACHE_DOWN``. channels-redis has no timeout of its own:
    its consumers wait for messages on the same connections. The in-memory layer is called as is."""
    if isinstance(layer, InMemoryChannelLayer):
        await call(*args)
        return
    try:
        with redis_guard().exchange(timed_out=lambda exc: isinstance(exc, TimeoutError)):
            async with asyncio.timeout(settings.PLATFORM_REDIS_TIMEOUT):
                await call(*args)
    except TimeoutError:
        raise RedisTimeoutError(
            f"the channel layer's Redis did not answer in {settings.PLATFORM_REDIS_TIMEOUT} s"
        ) from None


class LivePush:
    """Sends lists of items to ``group`` as ``{"type": message_type, key: items}`` messages."""

    def __init__(self, group: str, message_type: str, *, key: str, chunk: int, thread: str) -> None:
        self.group, self.message_type, self.key, self.chunk = group, message_type, key, chunk
        self.thread_name = thread
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._pid: int | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        localstate.register_thread(thread, alive=self.alive)

    def messages(self, items: list[Any]) -> list[dict[str, Any]]:
        return [
            {"type": self.message_type, self.key: items[start : start + self.chunk]}
            for start in range(0, len(items), self.chunk)
        ]

    def alive(self) -> bool:
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def push(self, items: list[Any]) -> None:
        """Send ``items`` to the group (in order), without waiting on a networked layer."""
        layer = get_channel_layer()
        if layer is None or not items:
            return
        if isinstance(layer, InMemoryChannelLayer):

            async def send_all() -> None:
                for message in self.messages(items):
                    await layer.group_send(self.group, message)

            try:
                async_to_sync(send_all)()
            except Exception:
                log.exception("%s: live push failed", self.group)
            return
        self.send(items)

    def send(self, items: list[Any]) -> None:
        """Queue ``items`` for the sender thread (started on first use, and again after a fork)."""
        loop, queue = self._ensure()
        loop.call_soon_threadsafe(queue.put_nowait, items)

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # new, or inherited across a fork
                ready = threading.Event()
                self._pid = os.getpid()

                def run() -> None:
                    loop = asyncio.new_event_loop()
                    asyncio.set_event_loop(loop)
                    self._queue = asyncio.Queue()
                    self._loop = loop
                    self._task = loop.create_task(self._drain(self._queue))
                    ready.set()
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
                self._thread.start()
                ready.wait()
            assert self._loop is not None and self._queue is not None
            return self._loop, self._queue

    async def _drain(self, queue: asyncio.Queue) -> None:
        layer = get_channel_layer()
        while True:
            items = await queue.get()
            while len(items) < self.chunk and not queue.empty():
                items = items + queue.get_nowait()
            for message in self.messages(items):
                await self._send(layer, message)

    async def _send(self, layer: Any, message: dict[str, Any]) -> None:
        """Send one message, tried again while the layer fails, for up to ``RETRY_SECONDS`` (the
        pushes behind it wait, so they stay in order): a Redis that restarted fails the first send
        on each connection it broke, and a push lost then, after a subscriber had already been
        replayed what was stored, would never reach it.  Then dropped, and logged."""
        loop = asyncio.get_running_loop()
        give_up, wait = loop.time() + RETRY_SECONDS, RETRY_FIRST_WAIT
        while True:
            try:
                await layer.group_send(self.group, message)
                return
            except Exception as exc:
                if loop.time() + wait > give_up:
                    log.exception("%s: live push failed for %s s; dropped", self.group, RETRY_SECONDS)
                    return
                log.warning(
                    "%s: live push failed (%s: %s); trying again", self.group, type(exc).__name__, exc
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_WAIT)
