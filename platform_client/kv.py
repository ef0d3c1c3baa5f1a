"""Key-value storage: get/put/delete with TTLs and namespaces, on memory, Redis, memcached, or a
consistent-hash ring over several nodes.

```python
from platform_client import kv

store = kv.from_url("redis://127.0.0.1:6379/0", namespace="orders")  # or memory://, memcached://
store.put("cart:7", b"3 items", ttl=60)
store.get("cart:7")  # b"3 items" (None once expired or deleted)
carts = store.namespace("carts")  # keys under "orders:carts:"
ring = kv.RingKV({"a": kv.from_url("memcached://10.0.0.1:11211"), "b": kv.from_url("memcached://10.0.0.2:11211")})
```

Values are bytes (``str`` is stored as UTF-8).  A backend that cannot be reached raises
:class:`KVUnavailable` naming it.  The ring (:class:`RingKV`) places each node at ``replicas``
points of a hash circle (MD5, as the original Go ring and ketama do); a node that fails is passed
over for ``dead_timeout`` seconds (its keys go to the next node on the circle, as pymemcache's
``HashClient`` does), and when it answers again it **rejoins under a new epoch**: the node's
epoch counter is incremented on the node itself and every key on that node is stored under it, so
the values it kept while it was passed over (now stale: newer ones were written elsewhere) are
never served again; they expire by their TTL.  Other processes read the new epoch within
``epoch_refresh`` seconds.  ``rejoin="flush"`` empties the node instead (oslo.cache's stale-read
bug is exactly a rejoined node served as it was).  A node made with a namespace keeps the ring's
keys and its epoch under it, so several rings (or tests) can share one server.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from bisect import bisect
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from platform_client._checks import seconds
from platform_client._urls import redacted

__all__ = ["KV", "KVUnavailable", "MemcachedKV", "MemoryKV", "RedisKV", "RingKV", "from_url"]

Value = bytes | str


class KVUnavailable(Exception):
    """A backend could not be reached (its name and the cause are in the message)."""


def _bytes(value: Value) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"kv values are bytes or str, not {type(value).__name__}")


def _ttl(ttl: float | None) -> float | None:
    return None if ttl is None else seconds(ttl, "ttl", hint=" (None: no expiry)")


class KV:
    """The interface every backend offers; keys are prefixed with ``namespace:``."""

    name = "kv"

    def __init__(self, namespace: str = "") -> None:
        self.prefix = f"{namespace}:" if namespace else ""

    def key(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValueError("a key is a non-empty string")
        return self.prefix + key

    def get(self, key: str, default: bytes | None = None) -> bytes | None:
        value = self._get(self.key(key))
        return default if value is None else value

    def put(self, key: str, value: Value, ttl: float | None = None) -> None:
        self._put(self.key(key), _bytes(value), _ttl(ttl))

    def delete(self, key: str) -> bool:
        """True if the key was there."""
        return self._delete(self.key(key))

    def namespace(self, name: str) -> KV:
        """A view of this store whose keys are under ``name:`` inside this one's namespace."""
        if not name or not isinstance(name, str):
            raise ValueError("a namespace is a non-empty string")
        return _Namespaced(self, name)

    # --- what a backend implements (full keys) ---------------------------------------------------
    def _get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        raise NotImplementedError

    def _delete(self, key: str) -> bool:
        raise NotImplementedError

    def incr(self, key: str) -> int:
        """Increment an integer counter (created at 1); used by the ring's epochs."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise :class:`KVUnavailable` when the backend cannot be reached."""

    def flush(self) -> None:
        """Empty the backend (every namespace)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> KV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Namespaced(KV):
    def __init__(self, parent: KV, name: str) -> None:
        super().__init__(name)
        self.parent = parent
        self.name = parent.name

    def key(self, key: str) -> str:
        return self.parent.key(super().key(key))

    def _get(self, key: str) -> bytes | None:
        return self.parent._get(key)

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        self.parent._put(key, value, ttl)

    def _delete(self, key: str) -> bool:
        return self.parent._delete(key)


class MemoryKV(KV):
    """In this process only (tests, one-process services); expired keys are dropped when read."""

    name = "memory"

    def __init__(self, namespace: str = "", *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(namespace)
        self.clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def _get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= self.clock():
            with self._lock:
                if self._data.get(key) is entry:
                    del self._data[key]
            return None
        return entry[0]

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        with self._lock:
            self._data[key] = (value, None if ttl is None else self.clock() + ttl)

    def _delete(self, key: str) -> bool:
        with self._lock:
            entry = self._data.pop(key, None)
        return entry is not None and (entry[1] is None or entry[1] > self.clock())

    def incr(self, key: str) -> int:
        with self._lock:
            value = int(self._data.get(key, (b"0", None))[0]) + 1
            self._data[key] = (str(value).encode(), None)
            return value

    def flush(self) -> None:
        with self._lock:
            self._data.clear()


class RedisKV(KV):
    """Redis (``pip install micro-platform-client[redis]``): one ``GET``/``SET PX``/``DEL`` per call."""

    name = "redis"

    def __init__(self, client: Any = None, *, url: str | None = None, namespace: str = "") -> None:
        super().__init__(namespace)
        import redis

        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self.client = (
            client if client is not None else redis.Redis.from_url(url or "redis://127.0.0.1:6379/0")
        )
        where = self.client.connection_pool.connection_kwargs
        self.name = f"redis {where.get('host', '?')}:{where.get('port', 6379)}/{where.get('db', 0)}"

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise KVUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def _get(self, key: str) -> bytes | None:
        return self._call(self.client.get, key)

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        self._call(self.client.set, key, value, px=None if ttl is None else max(1, round(ttl * 1000)))

    def _delete(self, key: str) -> bool:
        return bool(self._call(self.client.delete, key))

    def incr(self, key: str) -> int:
        return int(self._call(self.client.incr, key))

    def ping(self) -> None:
        self._call(self.client.ping)

    def flush(self) -> None:
        self._call(self.client.flushdb)

    def close(self) -> None:
        self.client.close()


class MemcachedKV(KV):
    """memcached through pymemcache (``[memcached]`` extra).  memcached keeps TTLs in whole
    seconds (rounded up) and keys of at most 250 bytes without spaces: longer or spaced keys are
    stored under their SHA-256."""

    name = "memcached"

    def __init__(
        self, client: Any = None, *, server: tuple[str, int] = ("127.0.0.1", 11211), namespace: str = ""
    ) -> None:
        super().__init__(namespace)
        from pymemcache.client.base import Client
        from pymemcache.exceptions import MemcacheUnexpectedCloseError

        self._errors = (OSError, MemcacheUnexpectedCloseError)
        self.client = client if client is not None else Client(server, connect_timeout=2, timeout=2)
        self.name = f"memcached {server[0]}:{server[1]}"

    @staticmethod
    def _mkey(key: str) -> str:
        if len(key.encode()) > 250 or any(c.isspace() for c in key):
            return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        return key

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise KVUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def _get(self, key: str) -> bytes | None:
        return self._call(self.client.get, self._mkey(key))

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        self._call(
            self.client.set,
            self._mkey(key),
            value,
            expire=0 if ttl is None else math.ceil(ttl),
            noreply=False,
        )

    def _delete(self, key: str) -> bool:
        return bool(self._call(self.client.delete, self._mkey(key), noreply=False))

    def incr(self, key: str) -> int:
        key = self._mkey(key)
        value = self._call(self.client.incr, key, 1, noreply=False)
        if value is None:  # memcached's incr does not create the key
            self._call(self.client.add, key, b"0", noreply=False)
            value = self._call(self.client.incr, key, 1, noreply=False)
        return int(value)

    def ping(self) -> None:
        self._call(self.client.version)

    def flush(self) -> None:
        self._call(self.client.flush_all, noreply=False)

    def close(self) -> None:
        self.client.close()


EPOCH_KEY = "__platform_ring_epoch__"


class RingKV(KV):
    """A consistent-hash ring over named nodes (any backends); see the module documentation."""

    name = "ring"

    def __init__(
        self,
        nodes: Mapping[str, KV],
        *,
        namespace: str = "",
        replicas: int = 100,
        dead_timeout: float = 10.0,
        rejoin: str = "epoch",
        epoch_refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(namespace)
        if not nodes:
            raise ValueError("a ring needs at least one node")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise ValueError(f"replicas is a positive number of points per node, not {replicas!r}")
        if rejoin not in ("epoch", "flush"):
            raise ValueError("rejoin is 'epoch' or 'flush'")
        self.nodes = dict(nodes)
        self.replicas, self.dead_timeout, self.rejoin = replicas, dead_timeout, rejoin
        self.epoch_refresh, self.clock = epoch_refresh, clock
        points = sorted((self._hash(f"{name}-{i}"), name) for name in self.nodes for i in range(replicas))
        self._hashes = [h for h, _ in points]
        self._owners = [name for _, name in points]
        #: Node name -> monotonic time until which it is passed over.
        self.dead: dict[str, float] = {}
        self.epochs: dict[str, int] = {}
        #: Node name -> why it was last passed over.
        self.errors: dict[str, str] = {}
        self._epochs_read = -math.inf
        self._lock = threading.Lock()

    @staticmethod
    def _hash(text: str) -> int:
        return int.from_bytes(hashlib.md5(text.encode(), usedforsecurity=False).digest()[:8], "big")

    def owners(self, key: str) -> list[str]:
        """The nodes ``key`` goes to, in order: the first live one holds it."""
        start = bisect(self._hashes, self._hash(key)) % len(self._hashes)
        seen: list[str] = []
        for i in range(len(self._owners)):
            name = self._owners[(start + i) % len(self._owners)]
            if name not in seen:
                seen.append(name)
                if len(seen) == len(self.nodes):
                    break
        return seen

    # --- node states -----------------------------------------------------------------------------
    def _read_epochs(self) -> None:
        now = self.clock()
        if now - self._epochs_read < self.epoch_refresh:
            return
        self._epochs_read = now
        for name, node in self.nodes.items():
            if name in self.dead:
                continue
            try:
                raw = node._get(node.prefix + EPOCH_KEY)
            except KVUnavailable as exc:
                self._mark_dead(name, exc)
                continue
            self.epochs[name] = int(raw) if raw else 0

    def _mark_dead(self, name: str, error: KVUnavailable) -> None:
        with self._lock:
            self.dead[name] = self.clock() + self.dead_timeout
            self.errors[name] = str(error)

    def _alive(self, name: str) -> bool:
        until = self.dead.get(name)
        if until is None:
            return True
        if self.clock() < until:
            return False
        try:  # its time is up: probe it, and let it rejoin under a new epoch (or empty)
            node = self.nodes[name]
            node.ping()
            if self.rejoin == "flush":
                node.flush()
                self.epochs[name] = 0
            else:
                self.epochs[name] = node.incr(node.prefix + EPOCH_KEY)
        except KVUnavailable as exc:
            self._mark_dead(name, exc)
            return False
        with self._lock:
            self.dead.pop(name, None)
        return True

    def _each(self, key: str, op: Callable[[KV, str], Any]) -> Any:
        self._read_epochs()
        for name in self.owners(key):
            if not self._alive(name):
                continue
            try:
                node = self.nodes[name]
                return op(node, f"{node.prefix}{self.epochs.get(name, 0)}|{key}")
            except KVUnavailable as exc:
                self._mark_dead(name, exc)
        raise KVUnavailable(
            "no node of the ring answered: " + "; ".join(self.errors[n] for n in sorted(self.dead))
        )

    def _get(self, key: str) -> bytes | None:
        return self._each(key, lambda node, k: node._get(k))

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        self._each(key, lambda node, k: node._put(k, value, ttl))

    def _delete(self, key: str) -> bool:
        return self._each(key, lambda node, k: node._delete(k))

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


def from_url(url: str, *, namespace: str = "") -> KV:
    """``memory://``, ``redis://host:port/db``, ``memcached://host:port``, or a ring:
    ``ring+memcached://h1:11211,h2:11211`` / ``ring+redis://h1:6379/0,h2:6379/0`` (``?replicas=``)."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme.startswith("ring+"):
        inner = scheme.removeprefix("ring+")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        hosts = parts.netloc.split(",")
        if not all(hosts) or len(set(hosts)) < len(hosts):
            raise ValueError(
                f"a ring URL names each of its nodes once ({scheme}://h1:port,h2:port): {redacted(url)!r}"
            )
        replicas = options.get("replicas", "100")
        if not replicas.isdigit():
            raise ValueError(f"replicas is a positive number of points per node, not {replicas!r}")
        nodes = {host: from_url(f"{inner}://{host}{parts.path}") for host in hosts}
        return RingKV(nodes, namespace=namespace, replicas=int(replicas))
    if scheme == "memory":
        return MemoryKV(namespace)
    if scheme in ("redis", "rediss", "unix"):
        return RedisKV(url=url, namespace=namespace)
    if scheme == "memcached":
        return MemcachedKV(server=(parts.hostname or "127.0.0.1", parts.port or 11211), namespace=namespace)
    raise ValueError(
        f"unknown kv URL scheme {scheme!r} in {redacted(url)!r} (memory, redis, memcached, ring+...)"
    )
