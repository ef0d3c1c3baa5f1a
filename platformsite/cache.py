"""Django's Redis cache, without a client per call or a pool per request context.

Django's ``RedisCacheClient`` builds a ``redis.Redis`` object for every cache operation (its
constructor fills a dict of a few hundred response callbacks: ~0.2 ms), and under ASGI the cache
handler is context-local, so each request got new pools and a new connection.
Here one client per process, per server list and options, is built once and shared by every
thread and request; redis-py clients and their pools are thread-safe.

Its connections are guarded (:class:`Guard`): a Redis that stops answering (hung, or a network
that drops packets) costs the requests in flight one read timeout (``PLATFORM_REDIS_TIMEOUT``),
and the others are refused at once for ``PLATFORM_REDIS_DOWN_SECONDS`` instead of each waiting
it out.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from platformsite import localstate

#: The shared cache cannot be reached (Redis stopped or restarting). Reads that have the database
#: to fall back on catch these and read it, keeping no copy (docs/faults.md).
CACHE_DOWN = (RedisConnectionError, RedisTimeoutError)


def shared_add(key: str, amount: int, ttl: int) -> int:
    """Add ``amount`` to a counter in the shared cache that expires after ``ttl`` seconds; the new
    total.  Raises one of :data:`CACHE_DOWN` while Redis cannot be reached."""
    if cache.add(key, amount, ttl):
        return amount
    try:
        return cache.incr(key, amount)
    except ValueError:  # expired between add and incr
        cache.add(key, amount, ttl)
        return amount


T = TypeVar("T")


class RedisDown(RedisConnectionError):
    """Redis did not answer within its timeout a moment ago: not tried again before ``retry_after``
    seconds (one of :data:`CACHE_DOWN`, so callers fall back or answer 503 as for any outage)."""

    def __init__(self, server: str, retry_after: int) -> None:
        super().__init__(f"Redis at {server} did not answer in time; not tried again for {retry_after} s")
        self.retry_after = retry_after


class Guard:
    """Whether one Redis server is answering, shared by every connection this process has to it.

    A command whose answer does not come within the connection's timeout marks the server down for
    ``down_seconds``; meanwhile commands are refused with :class:`RedisDown` before anything is
    sent.  Then one command at a time is let through: an answer ends the outage, another timeout
    starts a new one.  A refused connection (Redis stopped) fails at once by itself and is not
    counted."""

    def __init__(self, server: str, down_seconds: float, probe_seconds: float) -> None:
        self.server = server
        self.down_seconds = down_seconds
        #: How long the command let through after an outage may take (its connect and read
        #: timeouts); others are refused meanwhile.
        self.probe_seconds = probe_seconds
        self.down_until = 0.0
        self._lock = threading.Lock()

    def admit(self) -> None:
        """Return if a command may be sent now, or raise :class:`RedisDown`."""
        if not self.down_until:
            return
        with self._lock:
            now = time.monotonic()
            left = self.down_until - now
            if left > 0:
                raise RedisDown(self.server, math.ceil(left))
            self.down_until = now + self.probe_seconds  # this one tries; the others wait for it

    def exchange(self, timed_out: Callable[[Exception], bool]) -> _Exchange:
        """One exchange with the server by a client of its own (Celery, the channel layer), in the
        ``with`` block: refused at once while the server is known down; a failure ``timed_out``
        names as its timeout marks the server down, an answer marks it up."""
        return _Exchange(self, timed_out)

    def call(self, send: Callable[[], T], *, timed_out: Callable[[Exception], bool]) -> T:
        """``send()`` as one :meth:`exchange`."""
        with self.exchange(timed_out):
            return send()

    def failed(self) -> None:
        self.down_until = time.monotonic() + self.down_seconds

    def answered(self) -> None:
        if self.down_until:
            self.down_until = 0.0


class _Exchange:
    """:meth:`Guard.exchange`'s context (a class: a generator's context manager costs five times
    as much, on every Celery publish)."""

    __slots__ = ("guard", "timed_out")

    def __init__(self, guard: Guard, timed_out: Callable[[Exception], bool]) -> None:
        self.guard, self.timed_out = guard, timed_out

    def __enter__(self) -> None:
        self.guard.admit()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> bool:
        if exc is None:
            self.guard.answered()
        elif isinstance(exc, Exception) and self.timed_out(exc):
            self.guard.failed()
        return False


#: One guard per server (``host:port``, or a socket's path), and the guard of each URL asked for.
_guards: dict[str, Guard] = {}
_url_guards: dict[str, Guard] = {}
_guards_lock = threading.Lock()


def _forget_outages() -> None:
    for guard in list(_guards.values()):
        guard.answered()
    _url_guards.clear()


localstate.register_state("redis.guards", reset=_forget_outages)


def guard_for(options: dict[str, Any]) -> Guard:
    """The guard of the server a connection pool's ``options`` (or ``redis.connection.parse_url``'s
    answer) point to: one per server and process."""
    server = options.get("path") or f"{options.get('host', 'localhost')}:{options.get('port', 6379)}"
    guard = _guards.get(server)
    if guard is None:
        with _guards_lock:
            guard = _guards.setdefault(
                server,
                Guard(server, settings.PLATFORM_REDIS_DOWN_SECONDS, 2 * settings.PLATFORM_REDIS_TIMEOUT),
            )
    return guard


def redis_guard() -> Guard:
    """The guard of ``REDIS_URL``'s server, for the clients that do not take their connections
    from a :class:`GuardedConnectionPool` (the channel layer's, Celery's)."""
    url = settings.REDIS_URL
    guard = _url_guards.get(url)
    if guard is None:
        guard = _url_guards[url] = guard_for(redis.connection.parse_url(url))
    return guard


class _GuardedConnection:
    """Mixed into a redis-py connection class: every connect and every command asks the pool's
    guard first, and tells it whether an answer came in time."""

    guard: Guard
    _sock: Any
    #: Admitted to connect: the handshake's commands are part of the same attempt.
    _connecting = False

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        if self._sock is not None:  # connected: redis-py asks before every command
            return None
        # A hung server soon stops accepting too (its listen queue full), and a connect then
        # waits out its timeout: refused before connecting while the server is known down.
        self.guard.admit()
        self._connecting = True
        try:
            return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError:
            self.guard.failed()
            raise
        finally:
            self._connecting = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._connecting:
            self.guard.admit()
        super().send_packed_command(command, check_health)  # type: ignore[misc]

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except RedisTimeoutError:
            self.guard.failed()
            raise
        self.guard.answered()
        return response


class GuardedConnectionPool(redis.ConnectionPool):
    """A ``redis.ConnectionPool`` whose connections share their server's :class:`Guard`."""

    def __init__(self, connection_class: type = redis.Connection, **kwargs: Any) -> None:
        guarded = type(
            f"Guarded{connection_class.__name__}",
            (_GuardedConnection, connection_class),
            {"guard": guard_for(kwargs)},
        )
        super().__init__(connection_class=guarded, **kwargs)


class SharedRedisCacheClient(RedisCacheClient):
    """Keeps one ``redis.Redis`` per pool instead of making one per call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redis_clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._redis_clients.get(index)
        if client is None:
            client = self._redis_clients[index] = self._client(
                connection_pool=self._get_connection_pool(write)
            )
        return client


_clients: dict[tuple, SharedRedisCacheClient] = {}
_lock = threading.Lock()
# Emptied, the next call builds a new client (the old ones close when collected).
localstate.register_cache("platform.redis_clients", size=lambda: len(_clients), reset=_clients.clear)


class PlatformRedisCache(RedisCache):
    """``django.core.cache.backends.redis.RedisCache`` sharing one client per process."""

    @property
    def _cache(self) -> SharedRedisCacheClient:  # type: ignore[override]
        key = (
            os.getpid(),
            tuple(self._servers),
            tuple(sorted((k, repr(v)) for k, v in self._options.items())),
        )
        client = _clients.get(key)
        if client is None:
            with _lock:
                client = _clients.get(key)
                if client is None:
                    client = _clients[key] = SharedRedisCacheClient(self._servers, **self._options)
        return client
