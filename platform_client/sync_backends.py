"""Where ``platform_client.sync`` keeps its leases: in memory, on Redis, or in PostgreSQL.

Every backend does the same five things atomically: ``acquire`` (take a free or expired lease and
issue the next fencing token), ``renew`` and ``release`` (only for the holder's token),
``holder`` (who holds it, with which fence), and a fenced write (``fenced_put``: refused when a
newer fence was already written to that resource).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Backend", "MemoryBackend", "PostgresBackend", "RedisBackend", "SyncUnavailable"]


class SyncUnavailable(Exception):
    """The lock backend could not be reached (the cause is in the message)."""


class Backend:
    name = "backend"

    def acquire(self, name: str, token: str, ttl_ms: int) -> int | None:
        raise NotImplementedError

    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        raise NotImplementedError

    def release(self, name: str, token: str) -> bool:
        raise NotImplementedError

    def holder(self, name: str) -> tuple[str, int] | None:
        raise NotImplementedError

    def fenced_put(self, resource: str, value: bytes, fence: int) -> bool:
        raise NotImplementedError

    def fenced_get(self, resource: str) -> tuple[bytes, int] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryBackend(Backend):
    """Leases among the threads of this process."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._leases: dict[str, tuple[str | None, int, float]] = {}  # name -> holder, fence, expires
        self._fenced: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()

    def acquire(self, name: str, token: str, ttl_ms: int) -> int | None:
        with self._lock:
            holder, fence, expires = self._leases.get(name, (None, 0, 0.0))
            if holder is not None and expires > self.clock():
                return None
            self._leases[name] = (token, fence + 1, self.clock() + ttl_ms / 1000)
            return fence + 1

    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        with self._lock:
            holder, fence, expires = self._leases.get(name, (None, 0, 0.0))
            if holder != token or expires <= self.clock():
                return False
            self._leases[name] = (token, fence, self.clock() + ttl_ms / 1000)
            return True

    def release(self, name: str, token: str) -> bool:
        with self._lock:
            holder, fence, expires = self._leases.get(name, (None, 0, 0.0))
            if holder != token or expires <= self.clock():
                return False
            self._leases[name] = (None, fence, 0.0)
            return True

    def holder(self, name: str) -> tuple[str, int] | None:
        holder, fence, expires = self._leases.get(name, (None, 0, 0.0))
        return (holder, fence) if holder is not None and expires > self.clock() else None

    def fenced_put(self, resource: str, value: bytes, fence: int) -> bool:
        with self._lock:
            if fence < self._fenced.get(resource, (b"", 0))[1]:
                return False
            self._fenced[resource] = (value, fence)
            return True

    def fenced_get(self, resource: str) -> tuple[bytes, int] | None:
        return self._fenced.get(resource)


# KEYS[1] the lease, KEYS[2] its fence counter (one hash tag: one cluster slot); ARGV[3] the floor,
# the client's clock in microseconds since the epoch: a counter lost with Redis's data (a restart
# without persistence, a failover to an empty replica) starts again above every fence issued.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  if fence < tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[3])
    return tonumber(ARGV[3])
  end
  return fence
end
return false
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS[1] the resource (a hash: value, fence); ARGV[1] value, ARGV[2] fence.
_FENCED_PUT = """
local last = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if tonumber(ARGV[2]) < last then return 0 end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'fence', ARGV[2])
return 1
"""


def _microseconds() -> int:
    return time.time_ns() // 1000


class RedisBackend(Backend):
    """Leases as ``SET NX PX`` keys, fences from ``INCR``, both in one Lua script (``[redis]``).

    A fence is at least ``floor()`` (this client's clock in microseconds since the epoch), so it
    does not go backwards when Redis loses the counter (see docs/sdk.md for the assumption).

    A client made from ``url`` gives up on a call after ``timeout`` seconds (connecting, and
    waiting for the answer; ``?socket_timeout=`` in the URL wins), so a renewal on a hung Redis
    holds the scheduler's thread that long at most: keep lock ttls well above it."""

    name = "redis"

    def __init__(
        self,
        client: Any = None,
        *,
        url: str | None = None,
        prefix: str = "platform:sync",
        timeout: float = 1.0,
        floor: Callable[[], int] = _microseconds,
    ) -> None:
        import redis

        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self.client = (
            client
            if client is not None
            else redis.Redis.from_url(
                url or "redis://127.0.0.1:6379/0", socket_timeout=timeout, socket_connect_timeout=timeout
            )
        )
        self.prefix, self.floor = prefix, floor
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._fenced_put = self.client.register_script(_FENCED_PUT)

    def _keys(self, name: str) -> list[str]:
        tag = f"{{{self.prefix}:{name}}}"
        return [f"{tag}:lease", f"{tag}:fence"]

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise SyncUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    def acquire(self, name: str, token: str, ttl_ms: int) -> int | None:
        fence = self._call(self._acquire, keys=self._keys(name), args=[token, ttl_ms, int(self.floor())])
        return int(fence) if fence else None

    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        return bool(self._call(self._renew, keys=self._keys(name)[:1], args=[token, ttl_ms]))

    def release(self, name: str, token: str) -> bool:
        return bool(self._call(self._release, keys=self._keys(name)[:1], args=[token]))

    def holder(self, name: str) -> tuple[str, int] | None:
        lease, fence = self._call(self.client.mget, self._keys(name))
        return (lease.decode(), int(fence or 0)) if lease is not None else None

    def fenced_put(self, resource: str, value: bytes, fence: int) -> bool:
        key = f"{self.prefix}:fenced:{resource}"
        return bool(self._call(self._fenced_put, keys=[key], args=[value, fence]))

    def fenced_get(self, resource: str) -> tuple[bytes, int] | None:
        found = self._call(self.client.hmget, f"{self.prefix}:fenced:{resource}", ["value", "fence"])
        return (found[0], int(found[1])) if found[1] is not None else None

    def close(self) -> None:
        self.client.close()


class PostgresBackend(Backend):
    """Leases as rows: ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired RETURNING fence``, so
    taking a lease and issuing its fence is one statement (``[postgres]``, psycopg 3).  The tables
    (``<prefix>_leases``, ``<prefix>_fenced``) are created when missing."""

    name = "postgres"

    def __init__(self, dsn: str, *, prefix: str = "platform_sync", connect_timeout: int = 5) -> None:
        import psycopg

        self._psycopg = psycopg
        self.dsn, self.prefix, self.connect_timeout = dsn, prefix, connect_timeout
        self._conn: Any = None
        self._lock = threading.Lock()
        self._run(
            "CREATE TABLE IF NOT EXISTS {leases} (name text PRIMARY KEY, holder text,"
            " fence bigint NOT NULL, expires_at timestamptz NOT NULL)"
        )
        self._run(
            "CREATE TABLE IF NOT EXISTS {fenced} (resource text PRIMARY KEY, value bytea NOT NULL,"
            " fence bigint NOT NULL)"
        )

    def _run(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._psycopg.connect(
                        self.dsn, autocommit=True, connect_timeout=self.connect_timeout
                    )
                from psycopg import sql as compose

                statement = compose.SQL(sql).format(
                    leases=compose.Identifier(f"{self.prefix}_leases"),
                    fenced=compose.Identifier(f"{self.prefix}_fenced"),
                )
                with self._conn.cursor() as cursor:
                    cursor.execute(statement, params)
                    return cursor.fetchall() if cursor.description else []
            except self._psycopg.OperationalError as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise SyncUnavailable(f"postgres: {exc}") from exc
            except self._psycopg.errors.UniqueViolation:
                return []  # two first acquisitions of a new name at once: the other one won

    def acquire(self, name: str, token: str, ttl_ms: int) -> int | None:
        rows = self._run(
            "INSERT INTO {leases} AS l (name, holder, fence, expires_at)"
            " VALUES (%s, %s, 1, clock_timestamp() + %s * interval '1 millisecond')"
            " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, fence = l.fence + 1,"
            " expires_at = EXCLUDED.expires_at"
            " WHERE l.holder IS NULL OR l.expires_at <= clock_timestamp() RETURNING fence",
            (name, token, ttl_ms),
        )
        return rows[0][0] if rows else None

    def renew(self, name: str, token: str, ttl_ms: int) -> bool:
        return bool(
            self._run(
                "UPDATE {leases} SET expires_at = clock_timestamp() + %s * interval '1 millisecond'"
                " WHERE name = %s AND holder = %s AND expires_at > clock_timestamp() RETURNING fence",
                (ttl_ms, name, token),
            )
        )

    def release(self, name: str, token: str) -> bool:
        return bool(
            self._run(
                "UPDATE {leases} SET holder = NULL, expires_at = clock_timestamp()"
                " WHERE name = %s AND holder = %s AND expires_at > clock_timestamp() RETURNING fence",
                (name, token),
            )
        )

    def holder(self, name: str) -> tuple[str, int] | None:
        rows = self._run(
            "SELECT holder, fence FROM {leases}"
            " WHERE name = %s AND holder IS NOT NULL AND expires_at > clock_timestamp()",
            (name,),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def fenced_put(self, resource: str, value: bytes, fence: int) -> bool:
        rows = self._run(
            "INSERT INTO {fenced} AS f (resource, value, fence) VALUES (%s, %s, %s)"
            " ON CONFLICT (resource) DO UPDATE SET value = EXCLUDED.value, fence = EXCLUDED.fence"
            " WHERE f.fence <= EXCLUDED.fence RETURNING fence",
            (resource, value, fence),
        )
        return bool(rows)

    def fenced_get(self, resource: str) -> tuple[bytes, int] | None:
        rows = self._run("SELECT value, fence FROM {fenced} WHERE resource = %s", (resource,))
        return (bytes(rows[0][0]), rows[0][1]) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
