"""The deadline index: each passing node's id scored by the time its TTL runs out.

A Redis sorted set next to the heartbeat entries.  It lets the sweep ask "which nodes may be
overdue?" in one command instead of reading every node and every heartbeat entry each second
(at 10,000 nodes that full read cost a third of a CPU and stalled Redis for the heartbeats
queued behind its ``MGET``).  The index is a hint, never the truth: the sweep checks each
candidate against its heartbeat entry and its row before expiring it, re-indexes the ones that
were renewed, and a full pass every ``DISCOVERY_FULL_SWEEP_SECONDS`` re-indexes whatever the
index lost (a Redis restart, say).  Only on Redis; with any other cache every sweep is a full
pass, as the embedded mode's registries are small.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import NoScriptError

KEY = "discovery:deadlines"
CHUNK = 1000

#: Renew a heartbeat entry only if it exists (``SET ... XX``) and index its new deadline, in one
#: round trip and atomically (no deadline is indexed for a node that is not registered).
_RENEW = """
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'XX') then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  return 1
end
return 0
"""
_RENEW_SHA = hashlib.sha1(_RENEW.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def _backend() -> RedisCache | None:
    backend = caches["default"]
    return backend if isinstance(backend, RedisCache) else None


def available() -> bool:
    return _backend() is not None


def _client(backend: RedisCache) -> tuple[Any, str]:
    key = backend.make_and_validate_key(KEY)
    return backend._cache.get_client(key, write=True), key


def renew(entry_key: str, value: tuple, timeout: int, node_id: str, deadline: float) -> bool:
    """Overwrite the existing heartbeat entry ``entry_key`` and index ``deadline``; False when the
    entry does not exist.  Redis only (see :func:`available`)."""
    return renew_many([(entry_key, value, timeout, node_id, deadline)])[0]


def renew_many(renewals: list[tuple[str, tuple, int, str, float]]) -> list[bool]:
    """:func:`renew` for many nodes in one round trip: (entry key, value, timeout, node id,
    deadline) each; whether each entry existed."""
    backend = _backend()
    assert backend is not None
    client, index_key = _client(backend)
    dumps = backend._cache._serializer.dumps
    calls = [
        (
            [backend.make_and_validate_key(entry_key), index_key],
            [dumps(value), timeout, repr(deadline), node_id],
        )
        for entry_key, value, timeout, node_id, deadline in renewals
    ]
    for attempt in range(2):
        try:
            if len(calls) == 1:
                keys, args = calls[0]
                return [bool(client.evalsha(_RENEW_SHA, 2, *keys, *args))]
            with client.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(_RENEW_SHA, 2, *keys, *args)
                return [bool(done) for done in pipe.execute()]
        except NoScriptError:  # first use on this server, or after SCRIPT FLUSH or a restart
            if attempt:
                raise
            client.script_load(_RENEW)
    raise AssertionError("unreachable")


def index(deadlines: dict[str, float]) -> None:
    """Set these nodes' deadlines (no-op without Redis)."""
    backend = _backend()
    if backend is None or not deadlines:
        return
    client, key = _client(backend)
    items = list(deadlines.items())
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(items), CHUNK):
            pipe.zadd(key, dict(items[start : start + CHUNK]))
        pipe.execute()


def drop(node_ids: Iterable[str]) -> None:
    """Take these nodes out of the index (no-op without Redis)."""
    backend = _backend()
    ids = list(node_ids)
    if backend is None or not ids:
        return
    client, key = _client(backend)
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(ids), CHUNK):
            pipe.zrem(key, *ids[start : start + CHUNK])
        pipe.execute()


def due(now: float) -> list[str]:
    """Nodes whose indexed deadline is ``now`` or earlier, most overdue first."""
    backend = _backend()
    assert backend is not None
    client, key = _client(backend)
    return [member.decode() for member in client.zrangebyscore(key, "-inf", repr(now))]


def score(node_id: str) -> float | None:
    """The indexed deadline of one node (tests, diagnostics)."""
    backend = _backend()
    assert backend is not None
    client, key = _client(backend)
    return client.zscore(key, node_id)
