"""platform_client.sync when its backend misbehaves: a hung backend (the holder is told it lost the
lock by its local deadline), failed renewals (logged in one line), Redis losing its data (fences
still only increase)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from platform_client.sync import Sync
from platform_client.sync_backends import MemoryBackend, RedisBackend, SyncUnavailable
from tests.platform_client.sdk_backends import delete_prefixed, redis_prefix
from tests.platform_client.tcp_proxy import Proxy


class HangingBackend(MemoryBackend):
    """Renewals hang (a stopped Redis with no socket timeout) until ``answer`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging, self.answer = threading.Event(), threading.Event()

    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        self.hanging.set()
        self.answer.wait()
        return super().renew(name, token, ttl_ms)


class FailingBackend(MemoryBackend):
    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        raise SyncUnavailable("redis: TimeoutError: Timeout reading from socket")


def test_lock__lost_by_its_local_deadline_while_a_renewal_hangs():
    backend = HangingBackend()
    sync = Sync(backend, node="n")
    held = sync.lock("x", ttl=0.6).acquire()
    told: list[float] = []
    done = threading.Event()
    held.on_lost(lambda _: (told.append(time.monotonic()), done.set()))
    assert backend.hanging.wait(10)  # the first renewal (at ttl/3) is stuck on the backend
    assert done.wait(10) and held.lost.is_set(), "the holder was not told while its renewal hung"
    assert not backend.answer.is_set()
    assert told[0] >= held.expires  # by the deadline, not before it
    backend.answer.set()
    sync.close()


def test_lock__the_deadline_is_counted_from_when_each_successful_call_was_sent():
    sync = Sync(MemoryBackend(), node="n")
    sent = time.monotonic()
    held = sync.lock("x", ttl=5, renew=False).acquire()
    first = held.expires
    assert sent + 5 - held.margin <= first <= time.monotonic() + 5 - held.margin  # sent, not answered
    time.sleep(0.05)
    sent = time.monotonic()
    held._renew_once()
    assert held.expires >= sent + 5 - held.margin > first
    assert not held.lost.is_set()
    held.release()
    sync.close()


def test_lock__a_failed_renewal_logs_one_line_and_its_traceback_only_at_debug(caplog):
    sync = Sync(FailingBackend(), node="n")
    held = sync.lock("x", ttl=30, renew=False).acquire()
    with caplog.at_level(logging.DEBUG, logger="platform_client.sync"):
        held._renew_once()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert "TimeoutError" in warnings[0].getMessage()
    assert [r.exc_info is not None for r in caplog.records if r.levelno == logging.DEBUG] == [True]
    assert not held.lost.is_set()  # the lease has 27 s left: still held
    sync.close()


def test_redis_backend__a_client_from_a_url_times_out_its_calls():
    backend = RedisBackend(url="redis://127.0.0.1:1/0")
    kwargs = backend.client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.0, 1.0)
    assert (
        RedisBackend(
            url="redis://127.0.0.1:1/0?socket_timeout=0.25"
        ).client.connection_pool.connection_kwargs["socket_timeout"]
        == 0.25
    )  # the URL wins


@pytest.mark.redis
def test_redis_hung__holder_told_by_its_deadline_and_the_scheduler_keeps_running():
    with redis_prefix("sync") as (url, prefix):
        target = urlsplit(url)
        proxy = Proxy((target.hostname, target.port or 6379))
        via = urlunsplit((target.scheme, f"127.0.0.1:{proxy.port}", target.path, "", ""))
        sync = Sync(RedisBackend(url=via), node="n", namespace=prefix)  # 1 s timeout
        try:
            held = sync.lock("x", ttl=3).acquire()
            ticks: list[float] = []
            sync.scheduler.every(0.1, lambda: ticks.append(time.monotonic()))
            proxy.freeze()  # Redis stops answering, as under SIGSTOP
            frozen = time.monotonic()
            assert held.lost.wait(15)
            assert time.monotonic() - frozen < 4.5  # by the lease's end (2.7 s), with room for a slow machine
            assert len(ticks) > 5  # the renewals' calls gave up: other jobs still ran
            assert max(b - a for a, b in itertools.pairwise(ticks)) < 2.5
        finally:
            proxy.thaw()
            sync.close()
            proxy.close()


@pytest.mark.redis
def test_redis_lost_its_data__the_next_fence_is_still_higher():
    with redis_prefix("sync") as (url, prefix):
        sync = Sync(RedisBackend(url=url), node="n", namespace=prefix)
        try:
            first = sync.lock("x", ttl=5).acquire()
            assert sync.fenced_put("res", b"first", first.fence)
            first.release()
            delete_prefixed(url, prefix)  # the lease, its counter and the data: a restart without persistence
            second = sync.lock("x", ttl=5).acquire()
            assert second.fence > first.fence
            third = sync.lock("y", ttl=5).acquire()  # a name never used: above what this client issued too
            assert third.fence > second.fence
            second.release(), third.release()
        finally:
            sync.close()


@pytest.mark.redis
def test_redis_clients_whose_clocks_disagree__fences_still_increase():
    with redis_prefix("sync") as (url, prefix):
        ahead = Sync(RedisBackend(url=url, floor=lambda: 2_000_000_000_000_000), node="a", namespace=prefix)
        behind = Sync(RedisBackend(url=url, floor=lambda: 1_000), node="b", namespace=prefix)
        try:
            fences = []
            for sync in (ahead, behind, ahead, behind):
                held = sync.lock("x", ttl=5).acquire()
                fences.append(held.fence)
                held.release()
            assert fences == [2_000_000_000_000_000 + n for n in range(4)]  # the counter, set to the floor
        finally:
            ahead.close(), behind.close()
