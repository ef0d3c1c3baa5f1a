"""Django's Redis cache, without a client per call or a pool per request context.

Django's ``RedisCacheClient`` builds a ``redis.Redis`` object for every cache operation (its
constructor fills a dict of a few hundred response callbacks: ~0.2 ms), and under ASGI the cache
handler is context-local, so each request got new pools and a new connection.
Here one client per process, per server list and options, is built once and shared by every
thread and request; redis-py clients and their pools are thread-safe.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from platformsite import localstate

#: The shared cache cannot be reached (Redis stopped or restarting). Reads that have the database
#: to fall back on catch these and read it, keeping no copy (docs/faults.md).
CACHE_DOWN = (RedisConnectionError, RedisTimeoutError)


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
