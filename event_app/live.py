"""Pushing stored events to websocket subscribers through the channel layer.

With a networked channel layer (channels-redis) the push is handed to one sender thread per
process, which owns an event loop and sends in order: the publishing request does not wait for
the channel layer (the events are already durable; a subscriber that misses a push resumes with
``last_event_id``).  Pushes that queue up while the thread sends go out together, as one group
message of up to ``LIVE_CHUNK`` events.  The in-memory layer (embedded mode, one process) is
sent to directly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from platformsite import localstate

log = logging.getLogger(__name__)

LIVE_GROUP = "events.live"
#: Most events in one group message (keeps channel-layer messages small).
LIVE_CHUNK = 500


def _messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "events.live", "events": events[start : start + LIVE_CHUNK]}
        for start in range(0, len(events), LIVE_CHUNK)
    ]


class _Sender:
    """A daemon thread running an event loop that drains a queue of event lists in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._pid: int | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None

    def alive(self) -> bool:
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

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

                self._thread = threading.Thread(target=run, name="events-live-sender", daemon=True)
                self._thread.start()
                ready.wait()
            assert self._loop is not None and self._queue is not None
            return self._loop, self._queue

    async def _drain(self, queue: asyncio.Queue) -> None:
        layer = get_channel_layer()
        while True:
            events = await queue.get()
            while len(events) < LIVE_CHUNK and not queue.empty():
                events = events + queue.get_nowait()
            for message in _messages(events):
                try:
                    await layer.group_send(LIVE_GROUP, message)
                except Exception:
                    log.exception("events: live push failed")

    def send(self, events: list[dict[str, Any]]) -> None:
        loop, queue = self._ensure()
        loop.call_soon_threadsafe(queue.put_nowait, events)


_sender = _Sender()
localstate.register_thread("events-live-sender", alive=_sender.alive)


def push(events: list[dict[str, Any]]) -> None:
    """Send stored events to ``LIVE_GROUP`` (in order), without waiting on a networked layer."""
    layer = get_channel_layer()
    if layer is None:
        return
    if isinstance(layer, InMemoryChannelLayer):

        async def send_all() -> None:
            for message in _messages(events):
                await layer.group_send(LIVE_GROUP, message)

        try:
            async_to_sync(send_all)()
        except Exception:
            log.exception("events: live push failed")
        return
    _sender.send(events)
