"""The live push to websocket subscribers (platformsite.live, as events use it): in order, merged
when pushes queue up."""

from __future__ import annotations

import asyncio
import threading
import time

from event_app import live
from platformsite import live as platform_live
from platformsite import localstate


class SlowLayer:
    """A channel layer whose first group_send waits until released."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[int]]] = []
        self.sending, self.release = threading.Event(), threading.Event()

    async def group_send(self, group: str, message: dict) -> None:
        self.sent.append((group, [event["id"] for event in message["events"]]))
        if len(self.sent) == 1:
            self.sending.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 5)


def fresh_sender() -> platform_live.LivePush:
    """A sender of its own (its thread binds the patched layer); the real one stays registered."""
    sender = platform_live.LivePush(
        live.LIVE_GROUP, "events.live", key="events", chunk=live.LIVE_CHUNK, thread="events-live-sender"
    )
    localstate.register_thread("events-live-sender", alive=live.pusher.alive)
    return sender


def sent_when(layer: SlowLayer, count: int) -> list[tuple[str, list[int]]]:
    deadline = time.monotonic() + 5
    while len(layer.sent) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return layer.sent


def test_sender__pushes_queued_while_it_sends__go_out_as_one_message_in_order(monkeypatch):
    layer = SlowLayer()
    monkeypatch.setattr(platform_live, "get_channel_layer", lambda: layer)
    sender = fresh_sender()
    sender.send([{"id": 1}])
    assert layer.sending.wait(5)
    sender.send([{"id": 2}])
    sender.send([{"id": 3}, {"id": 4}])
    layer.release.set()
    assert sent_when(layer, 2) == [(live.LIVE_GROUP, [1]), (live.LIVE_GROUP, [2, 3, 4])]


def test_sender__a_large_push__is_split_into_messages_of_live_chunk_events(monkeypatch):
    layer = SlowLayer()
    layer.release.set()
    monkeypatch.setattr(platform_live, "get_channel_layer", lambda: layer)
    fresh_sender().send([{"id": n} for n in range(live.LIVE_CHUNK * 2 + 3)])
    sizes = [len(ids) for _, ids in sent_when(layer, 3)]
    assert sizes == [live.LIVE_CHUNK, live.LIVE_CHUNK, 3]


class FailingLayer:
    """A channel layer that refuses its first two sends (connections a Redis restart broke)."""

    def __init__(self) -> None:
        self.tried: list[list[int]] = []
        self.sent: list[tuple[str, list[int]]] = []

    async def group_send(self, group: str, message: dict) -> None:
        self.tried.append([event["id"] for event in message["events"]])
        if len(self.tried) <= 2:
            raise ConnectionError("Connection reset by peer")
        self.sent.append((group, [event["id"] for event in message["events"]]))


def test_sender__a_push_the_layer_refuses__is_tried_again_and_the_next_wait_behind_it(monkeypatch):
    layer = FailingLayer()
    monkeypatch.setattr(platform_live, "get_channel_layer", lambda: layer)
    monkeypatch.setattr(platform_live, "RETRY_FIRST_WAIT", 0.2)
    sender = fresh_sender()
    sender.send([{"id": 1}])
    time.sleep(0.05)  # refused once, waiting to try again
    sender.send([{"id": 2}])
    assert sent_when(layer, 2) == [(live.LIVE_GROUP, [1]), (live.LIVE_GROUP, [2])]
    assert layer.tried == [[1], [1], [1], [2]]
