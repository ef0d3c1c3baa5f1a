"""Locks with fencing tokens, and leader election, on Redis, PostgreSQL or in memory.

```python
from platform_client import sync

s = sync.from_url("redis://127.0.0.1:6379/0", node="worker-1")  # or postgresql://..., memory://
with s.lock("invoices", ttl=10) as held:  # renewed every ttl/3 while held
    s.fenced_put("invoices:last-run", b"2026-12-04", held.fence)  # refused if a newer fence wrote
    ...
leader = s.leader("scheduler")
elected = leader.elect()  # blocks until this node leads
elected.revoked.wait()  # set when leadership is lost (renewal refused, backend gone past the ttl)
```

Every acquisition is issued a **fencing token** that only increases (per lock name; on Redis it is
at least the client's clock in microseconds, so it keeps increasing when Redis loses its data).  A holder
that stalls past its lease (a long GC pause, a stopped VM) may still believe it holds the lock;
the protected resource refuses its stale fence once a newer one has written (``fenced_put``, or
the same ``WHERE fence <= %s`` in your own tables).  redis-py's ``Lock`` has no such token.

Holders renew their lease every ``ttl / 3`` on the scheduler's thread.  Each holder also keeps a
local deadline on the monotonic clock: when its last successful acquire or renewal was *sent*, plus
the ttl, minus a safety margin (``ttl / 10``).  A refused renewal, or that deadline passing without
a successful renewal, sets :attr:`Lock.lost` and runs the ``on_lost`` callbacks; the deadline is
watched on a thread of its own (``platform-sync-lease``), so a renewal stuck on a hung backend
cannot delay it.  Release only removes the lease if this holder still holds it.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import EllipsisType
from typing import Any
from urllib.parse import urlsplit

from platform_client._checks import seconds
from platform_client._urls import redacted
from platform_client.scheduler import Job, Scheduler
from platform_client.sync_backends import (
    Backend,
    MemoryBackend,
    PostgresBackend,
    RedisBackend,
    SyncUnavailable,
)

log = logging.getLogger(__name__)

__all__ = [
    "Elected",
    "Leader",
    "Lock",
    "LockLost",
    "LockNotAcquired",
    "Sync",
    "SyncUnavailable",
    "from_url",
]


class LockNotAcquired(Exception):
    """The lock stayed held by another holder for the whole wait."""


class LockLost(Exception):
    """This holder's lease ended (expired while paused, or taken after it expired)."""


def _wait(wait: float | None) -> float | None:
    """How long ``acquire`` retries: None for ever, else seconds (0: one try); NaN never ends."""
    if wait is None or wait == math.inf:
        return None
    return seconds(wait, "wait", hint=" (None: for ever, 0: one try)", zero=True)


class Lock:
    """One lock name; :meth:`acquire` / :meth:`release`, or ``with`` (see the module docs)."""

    def __init__(
        self,
        sync: Sync,
        name: str,
        ttl: float = 10.0,
        *,
        wait: float | None = 10.0,
        renew: bool = True,
        holder: str | None = None,
    ) -> None:
        self.sync, self.name, self.ttl, self.renew = sync, name, seconds(ttl, "ttl"), renew
        self.wait = _wait(wait)
        #: Unique per acquisition: ``<node id>#<random>``.
        self.holder = holder or sync.node
        self.token: str | None = None
        self.fence: int | None = None
        self.lost = threading.Event()
        self._on_lost: list[Callable[[Lock], Any]] = []
        self._job: Job | None = None
        self._watch: Job | None = None
        self._losing = threading.Lock()
        #: ``time.monotonic()`` by which this holder counts its lease as ended (see the module docs).
        self.expires = 0.0

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    @property
    def margin(self) -> float:
        """How long before the backend's lease ends this holder counts it as lost."""
        return self.ttl / 10

    def on_lost(self, callback: Callable[[Lock], Any]) -> None:
        self._on_lost.append(callback)

    def try_acquire(self) -> bool:
        token = f"{self.holder}#{uuid.uuid4().hex[:12]}"
        sent = time.monotonic()  # the lease starts no earlier than this
        fence = self.sync.backend.acquire(self.name, token, self.ttl_ms)
        if fence is None:
            return False
        self.token, self.fence = token, fence
        self.lost.clear()
        self._extend(sent)
        if self.renew:
            self._job = self.sync.scheduler.every(self.ttl / 3, self._renew_once)
        return True

    def acquire(self, wait: float | EllipsisType | None = ...) -> Lock:
        """Take the lock, retrying with backoff and jitter for up to ``wait`` seconds (None: for ever)."""
        wait = self.wait if isinstance(wait, EllipsisType) else _wait(wait)
        deadline = None if wait is None else time.monotonic() + wait
        delay = 0.01
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                raise LockNotAcquired(f"lock {self.name!r} stayed held for {wait} s")
            pause = delay * (0.5 + random.random())
            if deadline is not None:
                pause = min(pause, max(deadline - time.monotonic(), 0.0))
            time.sleep(pause)
            delay = min(delay * 2, max(self.ttl / 4, 0.05))
        return self

    def _extend(self, sent: float) -> None:
        """The lease renewed by a call sent at ``sent``: move the deadline and re-arm its watch."""
        with self._losing:
            self.expires = sent + self.ttl - self.margin
            if self._watch is not None:
                self._watch.cancel()
            self._watch = self.sync._leases.call_later(self.expires - time.monotonic(), self._check_expired)

    def _check_expired(self) -> None:
        """On the lease watch's thread: lost once the local deadline has passed."""
        if self.token is None or self.lost.is_set():
            return
        if time.monotonic() >= self.expires:
            self._lose()

    def _renew_once(self) -> None:
        token = self.token
        if token is None or self.lost.is_set():
            return
        sent = time.monotonic()
        try:
            renewed = self.sync.backend.renew(self.name, token, self.ttl_ms)
        except SyncUnavailable as exc:
            log.warning("sync: renewing %r failed: %s", self.name, exc)
            log.debug("sync: renewing %r failed", self.name, exc_info=True)
            if time.monotonic() >= self.expires:
                self._lose()
            return  # may still hold it until the deadline (the lease watch tells)
        if not renewed:
            self._lose()
        elif not self.lost.is_set():
            self._extend(sent)

    def _lose(self) -> None:
        with self._losing:
            for job in (self._job, self._watch):
                if job is not None:
                    job.cancel()
            self._job = self._watch = None
            if self.token is None or self.lost.is_set():
                return
            self.lost.set()
        log.warning("sync: lock %r (fence %s) was lost", self.name, self.fence)
        for callback in self._on_lost:
            try:
                callback(self)
            except Exception:
                log.exception("sync: an on_lost callback failed")

    @property
    def held(self) -> bool:
        """True while the backend still shows this acquisition as the holder (one round trip)."""
        if self.token is None:
            return False
        holder = self.sync.backend.holder(self.name)
        return holder is not None and holder[0] == self.token

    def release(self) -> bool:
        """Give the lock up; False if it was not held by this acquisition any more."""
        for job in (self._job, self._watch):
            if job is not None:
                job.cancel()
        self._job = self._watch = None
        token, self.token = self.token, None
        if token is None:
            return False
        return self.sync.backend.release(self.name, token)

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class Elected:
    """This node leads ``leader.name`` (go-micro's ``Elected``): ``id``, ``fence``, ``reelect``,
    ``resign``, ``status``, and ``revoked`` (an Event set when leadership is lost)."""

    def __init__(self, leader: Leader, lock: Lock) -> None:
        self.leader, self._lock = leader, lock
        self.id = leader.id
        self.revoked = lock.lost
        lock.on_lost(lambda _: leader._changed())

    @property
    def fence(self) -> int | None:
        return self._lock.fence

    def status(self) -> bool:
        """True while this node is the leader."""
        return not self.revoked.is_set() and self._lock.held

    def on_revoked(self, callback: Callable[[], Any]) -> None:
        self._lock.on_lost(lambda _: callback())

    def reelect(self, wait: float | None = None) -> Elected:
        """Seek election again (after a revocation): blocks until elected, a new fence."""
        self._lock.release()
        self._lock.acquire(wait)
        self.revoked.clear()
        self.leader._changed()
        return self

    def resign(self) -> None:
        self._lock.release()
        self.leader._changed()


class Leader:
    """Leader election for one name (go-micro's ``Leader``): :meth:`elect`, :meth:`follow`,
    :meth:`status` (the current leader's id)."""

    def __init__(self, sync: Sync, name: str, *, ttl: float = 10.0, id: str | None = None) -> None:
        self.sync, self.name, self.ttl = sync, f"leader:{name}", seconds(ttl, "ttl")
        self.id = id or sync.node
        self._followers: list[tuple[Callable[[str | None], Any], Job]] = []
        self._last: str | None = None
        self._job: Job | None = None

    def elect(self, wait: float | None = None) -> Elected:
        """Block until this node is elected (``wait`` seconds at most: ``LockNotAcquired``)."""
        lock = Lock(self.sync, self.name, self.ttl, wait=wait, holder=self.id)
        lock.acquire()
        self._changed()
        return Elected(self, lock)

    def status(self) -> str | None:
        """The id of the current leader (None: nobody leads)."""
        holder = self.sync.backend.holder(self.name)
        return holder[0].rpartition("#")[0] if holder else None

    def follow(self, callback: Callable[[str | None], Any], interval: float | None = None) -> Job:
        """Call ``callback(leader id or None)`` on every change of leader (checked every
        ``interval``, default ttl/3, and at this node's own elections), and now when someone
        leads already; ``job.cancel()`` stops following."""
        job = self.sync.scheduler.every(interval or self.ttl / 3, self._changed)
        self._followers.append((callback, job))  # cancelling the job stops this callback too
        self._changed()
        return job

    def _changed(self) -> None:
        self._followers = [(callback, job) for callback, job in self._followers if not job.cancelled]
        followers = [callback for callback, _ in self._followers]
        if not followers:
            return
        try:
            current = self.status()
        except SyncUnavailable:
            return
        if current != self._last:
            self._last = current
            for callback in followers:
                try:
                    callback(current)
                except Exception:
                    log.exception("sync: a follow callback failed")


class Sync:
    """Locks and leaders on one backend, for one node; made by :func:`from_url`."""

    def __init__(
        self,
        backend: Backend,
        *,
        node: str | None = None,
        namespace: str = "",
        scheduler: Scheduler | None = None,
    ) -> None:
        self.backend = backend
        self.node = node or f"node-{uuid.uuid4().hex[:8]}"
        self.namespace = namespace
        self._own_scheduler = scheduler is None
        self.scheduler = scheduler or Scheduler(name="platform-sync")
        #: Watches the holders' local lease deadlines; never blocked by a backend call.
        self._leases = Scheduler(name="platform-sync-lease")

    def _name(self, name: str) -> str:
        if not name:
            raise ValueError("a lock name is required")
        return f"{self.namespace}:{name}" if self.namespace else name

    def lock(self, name: str, ttl: float = 10.0, *, wait: float | None = 10.0, renew: bool = True) -> Lock:
        """A lock on ``name`` (taken by ``with`` or :meth:`Lock.acquire`)."""
        return Lock(self, self._name(name), ttl, wait=wait, renew=renew)

    @contextmanager
    def locked(self, name: str, ttl: float = 10.0, **options: Any) -> Iterator[int]:
        """``with s.locked("x") as fence:``: the fence only."""
        with self.lock(name, ttl, **options) as held:
            assert held.fence is not None
            yield held.fence

    def leader(self, name: str, *, ttl: float = 10.0, id: str | None = None) -> Leader:
        return Leader(self, self._name(name), ttl=ttl, id=id)

    def fenced_put(self, resource: str, value: bytes | str, fence: int) -> bool:
        """Write ``value`` unless a newer fence has written ``resource``; True if written."""
        if isinstance(value, str):
            data = value.encode()
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
        else:  # bytes(5) would be five NUL bytes
            raise TypeError(f"fenced values are bytes or str, not {type(value).__name__}")
        if isinstance(fence, bool) or not isinstance(fence, int):
            raise TypeError(f"a fence is the int a lock was issued, not {type(fence).__name__}")
        if fence < 1:
            raise ValueError(f"fences start at 1, not {fence}")
        return self.backend.fenced_put(self._name(resource), data, fence)

    def fenced_get(self, resource: str) -> tuple[bytes, int] | None:
        """``(value, fence)`` last written to ``resource``."""
        return self.backend.fenced_get(self._name(resource))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the lease watch (and the scheduler, when this Sync made it), waiting ``timeout``
        seconds at most in all for a job running now, then close the backend."""
        deadline = time.monotonic() + timeout
        if self._own_scheduler:
            self.scheduler.close(timeout)
        self._leases.close(max(deadline - time.monotonic(), 0.0))
        self.backend.close()


def from_url(
    url: str, *, namespace: str = "", node: str | None = None, scheduler: Scheduler | None = None
) -> Sync:
    """``memory://``, ``redis://host:port/db`` or ``postgresql://user:pw@host/db``."""
    scheme = urlsplit(url).scheme
    backend: Backend
    if scheme == "memory":
        backend = MemoryBackend()
    elif scheme in ("redis", "rediss", "unix"):
        backend = RedisBackend(url=url)
    elif scheme in ("postgres", "postgresql"):
        backend = PostgresBackend(url)
    else:
        raise ValueError(
            f"unknown sync URL scheme {scheme!r} in {redacted(url)!r} (memory, redis, postgresql)"
        )
    return Sync(backend, node=node, namespace=namespace, scheduler=scheduler)
