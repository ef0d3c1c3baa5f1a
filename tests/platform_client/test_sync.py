"""platform_client.sync: locks with fencing tokens and leader election, in threads and in several
processes, on memory, Redis and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from platform_client.scheduler import Scheduler
from platform_client.sync import LockNotAcquired, Sync, from_url
from platform_client.sync_backends import MemoryBackend, RedisBackend, SyncUnavailable
from tests.platform_client.sdk_backends import postgres_url, redis_prefix, unique_prefix

ROOT = Path(__file__).resolve().parents[2]


class Shared:
    """A backend's URL and a namespace no other test or run uses (lock and resource names)."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url, self.namespace = url, namespace

    def open(self, **kwargs) -> Sync:
        return from_url(self.url, namespace=self.namespace, **kwargs)


@contextmanager
def opened_backend(kind: str):
    if kind == "memory":
        yield Shared("memory://", "")
    elif kind == "redis":
        with redis_prefix("sync") as (url, prefix):
            yield Shared(url, prefix)
    else:
        yield Shared(postgres_url("sync"), unique_prefix("sync"))


@pytest.fixture(params=["memory", "redis", "postgres"])
def url(request):
    with opened_backend(request.param) as made:
        yield made


@pytest.fixture(params=["redis", "postgres"])
def shared_url(request):
    """A backend several processes share."""
    with opened_backend(request.param) as made:
        yield made


@pytest.fixture
def sync(url):
    s = url.open(node="test-node")
    yield s
    s.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.platform_client.sync_worker", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


# --- one process ----------------------------------------------------------------------------------


def test_lock__second_holder_waits_and_gets_a_higher_fence(sync):
    with sync.lock("jobs", ttl=5) as first:
        assert sync.lock("jobs", ttl=5, wait=0).try_acquire() is False
        with pytest.raises(LockNotAcquired, match="jobs"):
            sync.lock("jobs", ttl=5, wait=0.05).acquire()
    with sync.lock("jobs", ttl=5) as second:
        assert second.fence > first.fence
    other = sync.lock("other", ttl=5).acquire()
    if sync.backend.name != "redis":  # on Redis a fence is at least the clock (test_sync_failures)
        assert other.fence == 1  # fences count per lock name
    other.release()


def test_release__only_by_the_holder(sync):
    lock = sync.lock("x", ttl=5).acquire()
    assert sync.backend.release(sync._name("x"), "someone-else#1") is False
    assert lock.held
    assert lock.release() is True
    assert lock.release() is False  # twice: nothing left to release
    assert not lock.held


def test_fenced_put__a_stale_fence_is_refused_and_loses_nothing(sync):
    assert sync.fenced_put("res", b"from 5", 5)
    assert sync.fenced_put("res", "from 5 again", 5)  # the same holder may write again
    assert sync.fenced_put("res", b"from 3", 3) is False
    assert sync.fenced_get("res") == (b"from 5 again", 5)


def test_fenced_put__a_value_that_is_not_bytes_or_str_is_refused_and_nothing_is_written():
    sync = Sync(MemoryBackend(), node="n")
    assert sync.fenced_put("res", b"kept", 1)
    for bad in (5, None, 2.5, ["x"]):
        with pytest.raises(TypeError, match="bytes or str"):
            sync.fenced_put("res", bad, 2)
    assert sync.fenced_get("res") == (b"kept", 1)
    sync.close()


@pytest.mark.parametrize(
    ("fence", "error"), [("9", TypeError), (9.7, TypeError), (True, TypeError), (0, ValueError)]
)
def test_fenced_put__a_fence_is_an_issued_int(fence, error):
    sync = Sync(MemoryBackend(), node="n")
    assert sync.fenced_put("res", b"kept", 1)
    with pytest.raises(error, match="fence"):
        sync.fenced_put("res", b"lost", fence)
    assert sync.fenced_get("res") == (b"kept", 1)
    sync.close()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"ttl": float("nan")}, ValueError),
        ({"ttl": float("inf")}, ValueError),
        ({"ttl": 0}, ValueError),
        ({"ttl": "10"}, TypeError),
        ({"wait": float("nan")}, ValueError),
        ({"wait": -1}, ValueError),
        ({"wait": "5"}, TypeError),
    ],
)
def test_lock__ttl_and_wait_are_numbers_of_seconds(options, error):
    sync = Sync(MemoryBackend(), node="n")
    with pytest.raises(error, match=r"ttl|wait"):
        sync.lock("x", **options)
    if "ttl" in options:
        with pytest.raises(error, match="ttl"):
            sync.leader("x", ttl=options["ttl"])
    sync.close()


def test_lock__wait_zero_is_one_try_and_none_or_inf_waits_for_ever():
    sync = Sync(MemoryBackend(), node="n")
    held = sync.lock("x", ttl=5).acquire()
    with pytest.raises(LockNotAcquired):
        sync.lock("x", ttl=5, wait=0).acquire()
    assert sync.lock("x", wait=float("inf")).wait is None
    held.release()
    sync.close()


def test_lock__expired_lease_is_taken_and_the_old_holder_learns_it_lost():
    clock = Clock()
    scheduler = Scheduler()
    sync = Sync(MemoryBackend(clock=clock), node="n", scheduler=scheduler)
    old = sync.lock("x", ttl=1, renew=False).acquire()
    lost = []
    old.on_lost(lost.append)
    clock.now += 2  # the holder stalled past its lease
    new = sync.lock("x", ttl=1, renew=False).acquire()
    assert new.fence == old.fence + 1
    old._renew_once()  # its renewal is refused
    assert old.lost.is_set() and lost == [old]
    assert old.release() is False
    assert sync.fenced_put("res", b"new", new.fence) and not sync.fenced_put("res", b"old", old.fence)
    scheduler.close()


def test_lock__renewal_keeps_it_beyond_its_ttl(sync):
    with sync.lock("renewed", ttl=0.3) as held:
        renewed = threading.Event()
        held.on_lost(lambda _: renewed.set())
        for _ in range(3):  # three lease lengths later it is still this holder's
            assert not held.lost.wait(0.3)
        assert held.held
        assert sync.lock("renewed", ttl=0.3, wait=0).try_acquire() is False
    assert not renewed.is_set()


def test_release__stops_the_renewal_job(sync):
    lock = sync.lock("job", ttl=5).acquire()
    assert sync.scheduler.jobs == 1
    lock.release()
    assert sync.scheduler.jobs == 0


def test_leader__elect_follow_resign_reelect(sync):
    seen: list[str | None] = []
    leader = sync.leader("scheduler", ttl=5, id="a")
    job = leader.follow(seen.append, interval=3600)  # told by this test's own calls only
    assert seen == []  # nobody leads: nothing changed
    elected = leader.elect(wait=1)
    assert seen == ["a"]
    assert (elected.id, leader.status(), elected.status()) == ("a", "a", True)
    other = sync.leader("scheduler", ttl=5, id="b")
    with pytest.raises(LockNotAcquired):
        other.elect(wait=0.05)
    first_fence = elected.fence
    elected.resign()
    assert leader.status() is None and elected.status() is False
    b = other.elect(wait=1)
    assert leader.status() == "b" and b.fence > first_fence
    leader._changed()  # what the follow job does every interval
    b.resign()
    elected.reelect(wait=1)
    assert leader.status() == "a" and elected.fence > b.fence
    job.cancel()
    assert seen == ["a", None, "b", "a"]


def test_leader__follow_cancelled__its_callback_is_not_called_any_more():
    sync = Sync(MemoryBackend(), node="n")
    seen: list[str | None] = []
    leader = sync.leader("scheduler", ttl=5, id="a")
    job = leader.follow(seen.append, interval=3600)
    elected = leader.elect(wait=1)
    job.cancel()
    elected.resign()
    leader.elect(wait=1).resign()
    assert seen == ["a"]
    sync.close()


def test_leader__revoked_when_the_lease_is_taken():
    clock = Clock()
    sync = Sync(MemoryBackend(clock=clock), node="n")
    elected = sync.leader("x", ttl=1, id="a").elect(wait=0)
    revoked = []
    elected.on_revoked(lambda: revoked.append(True))
    clock.now += 5
    sync.leader("x", ttl=1, id="b").elect(wait=0)
    elected._lock._renew_once()
    assert elected.revoked.is_set() and revoked == [True] and not elected.status()
    sync.close()


def test_backend_down__clear_exception_naming_it():
    backend = RedisBackend(url="redis://127.0.0.1:1/0")
    with pytest.raises(SyncUnavailable, match="redis"):
        Sync(backend).lock("x", wait=0).acquire()


def test_from_url__unknown_scheme():
    with pytest.raises(ValueError, match="unknown sync URL scheme"):
        from_url("zookeeper://x")


# --- several processes ----------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.postgres
def test_processes__contending_never_overlap_and_fences_only_increase(shared_url):
    procs = [worker("count", shared_url.url, "counter-lock", "15", shared_url.namespace) for _ in range(4)]
    outputs = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    sync = shared_url.open()
    value, fence = sync.fenced_get("counter")
    sync.close()
    assert int(value) == 60  # no read-modify-write was lost: no two holders overlapped
    fences = [f for output in outputs for f in output]
    assert len(set(fences)) == 60 and max(fences) == fence
    assert all(output == sorted(output) for output in outputs)


@pytest.mark.redis
@pytest.mark.postgres
def test_processes__a_holder_that_dies_is_succeeded_after_its_lease(shared_url):
    proc = worker("hold", shared_url.url, "dies", "1", shared_url.namespace)
    first = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    sync = shared_url.open()
    with sync.lock("dies", ttl=5, wait=30) as held:
        assert held.fence > first
        if sync.backend.name != "redis":  # on Redis a fence is at least the clock
            assert held.fence == first + 1
    sync.close()


@pytest.mark.redis
@pytest.mark.postgres
def test_processes__a_paused_holders_stale_fence_is_refused(shared_url):
    proc = worker("hold", shared_url.url, "paused", "1", shared_url.namespace)
    stale = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGSTOP)  # a long GC pause: no renewal, the lease runs out
    try:
        sync = shared_url.open()
        with sync.lock("paused", ttl=10, wait=30) as held:
            assert held.fence > stale
            assert sync.fenced_put("resource", b"fresh", held.fence)
            os.kill(proc.pid, signal.SIGCONT)
            out, _ = proc.communicate("go\n", timeout=30)
            assert out.split() == ["refused", "not-held"]
            assert sync.fenced_get("resource") == (b"fresh", held.fence)
        sync.close()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()


@pytest.mark.redis
@pytest.mark.postgres
def test_processes__leader_killed__another_is_elected_and_followers_see_it(shared_url):
    proc = worker("lead", shared_url.url, "fleet", "1", shared_url.namespace)
    line = proc.stdout.readline().split()
    assert line[:2] == ["leader", "worker-lead"]
    sync = shared_url.open(node="successor")
    leader = sync.leader("fleet", ttl=1)
    seen: list[str | None] = []
    leader.follow(seen.append, interval=0.1)
    assert seen == ["worker-lead"]
    proc.kill()
    proc.wait()
    elected = leader.elect(wait=30)
    assert elected.fence > int(line[2]) and leader.status() == "successor"
    elected.resign()
    sync.close()
    assert seen[0] == "worker-lead" and "successor" in seen
