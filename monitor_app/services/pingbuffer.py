"""Buffered job pings: a steady success ping answered without a database round trip.

A success ping of a job that passes, with its counters at their caps and no run open, changes
nothing stored but its deadline (:func:`monitor_app.services.jobs.steady_success`).  The hot
route (:mod:`monitor_app.hot`) answers such a ping with one Redis command: it appends the ping
to a shared list.  The state loop (every ``MONITOR_LOOP_SECONDS``) first stores the buffered
pings (:func:`pings_flush`): their rows in one bulk insert, their last result in the shared
cache (as a slow-path ping leaves it), and only then trims them from the list.  A job the loop
would call late is first looked for in the list (:meth:`RedisBuffer.last_pings`), so a ping
answered before its deadline keeps its job passing even while another loop is storing it.

The flush reads the list's head, stores it, and only then trims it: a process that dies between
the two leaves the entries for the next flush (a ping may then be stored twice, never lost).  A
buffered ping whose job is no longer steady when it is stored (a start, a failure or a late flip
came in between, or this process's copy of the job was a second old) is applied in full, as the
slow path would have applied it at its time; one older than the job's last stored result is
only recorded.

Where the buffer lives, ``MONITOR_PING_BUFFER``: ``auto`` (Redis when the shared cache is Redis,
else off: every ping takes the full view, as in the embedded mode), ``redis``, ``memory`` (this
process's memory: a crash loses up to a loop interval of answered pings; for a single-process
deployment that accepts it) or ``off``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

from monitor_app.models import Check, Ping
from monitor_app.services import engine
from platformsite import localstate

log = logging.getLogger(__name__)

LIST_KEY = "platform:monitor:pings"
FLUSH_LOCK = "monitor:pings:flushing"
#: Pings stored per batch of a flush (a flush takes batches until the list is empty or for 5 s).
FLUSH_BATCH = 5000


class RedisBuffer:
    """The shared list in Redis (the shared cache's server and connection pool)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def push(self, entry: dict[str, Any]) -> None:
        # One command: a pipeline of two costs three times the CPU in redis-py.
        self.client.rpush(LIST_KEY, json.dumps(entry, separators=(",", ":")))

    def head(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(LIST_KEY, 0, count - 1)]

    def drop(self, count: int) -> None:
        self.client.ltrim(LIST_KEY, count, -1)

    def last_pings(self, check_ids: list[str]) -> dict[str, float]:
        return _last(self.client.lrange(LIST_KEY, 0, -1), set(check_ids), json.loads)

    def size(self) -> int:
        return int(self.client.llen(LIST_KEY))


def _last(entries: Any, wanted: set[str], load: Any) -> dict[str, float]:
    """The newest buffered ping time of each wanted check (the loop asks only about jobs it would
    otherwise call late: a rare, small question, so the list is read whole)."""
    found: dict[str, float] = {}
    if not wanted:
        return found
    for raw in entries:
        entry = load(raw)
        if entry["c"] in wanted and entry["t"] > found.get(entry["c"], 0.0):
            found[entry["c"]] = entry["t"]
    return found


class MemoryBuffer:
    """This process's memory (``MONITOR_PING_BUFFER=memory``)."""

    def __init__(self) -> None:
        self.entries: deque[dict[str, Any]] = deque()
        self.lock = threading.Lock()

    def push(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)

    def head(self, count: int) -> list[dict[str, Any]]:
        with self.lock:
            return [self.entries[i] for i in range(min(count, len(self.entries)))]

    def drop(self, count: int) -> None:
        with self.lock:
            for _ in range(min(count, len(self.entries))):
                self.entries.popleft()

    def last_pings(self, check_ids: list[str]) -> dict[str, float]:
        with self.lock:
            entries = list(self.entries)
        return _last(entries, set(check_ids), lambda entry: entry)

    def size(self) -> int:
        return len(self.entries)


Buffer = RedisBuffer | MemoryBuffer
_buffers: dict[str, Buffer] = {}


def _reset() -> None:
    _buffers.clear()


localstate.register_state("monitor.ping_buffer", reset=_reset)


def buffer() -> Buffer | None:
    """Where steady pings are buffered in this process, or None (every ping takes the view)."""
    mode = settings.MONITOR_PING_BUFFER
    if mode == "auto":
        mode = "redis" if isinstance(caches["default"], RedisCache) else "off"
    if mode == "off":
        return None
    found = _buffers.get(mode)
    if found is None:
        shared = caches["default"]
        made = RedisBuffer(shared._cache.get_client(write=True)) if mode == "redis" else MemoryBuffer()
        found = _buffers.setdefault(mode, made)
    return found


def ping_buffer(
    *,
    check: Check,
    exit_status: int | None,
    rid: str | None,
    body: str,
    method: str,
    remote_addr: str,
    user_agent: str,
    now: float,
    into: Buffer,
) -> None:
    """Buffer a steady success ping of ``check`` (the caller checked it is steady)."""
    entry = {
        "c": str(check.pk),
        "x": exit_status,
        "r": rid,
        "m": method[:8],
        "a": remote_addr[:64],
        "u": user_agent[:200],
        "b": body,
        "t": now,
    }
    into.push(entry)


def pings_flush(*, now: float | None = None, budget: float = 5.0) -> int:
    """Store the buffered pings (the state loop's first step): how many were stored."""
    found = buffer()
    if found is None or not found.size():
        return 0
    if not cache.add(FLUSH_LOCK, time.time(), timeout=60):  # another loop is flushing
        return 0
    stored = 0
    ends = time.monotonic() + budget
    try:
        while time.monotonic() < ends:
            entries = found.head(FLUSH_BATCH)
            if not entries:
                break
            pings_store(entries)
            found.drop(len(entries))
            stored += len(entries)
            if len(entries) < FLUSH_BATCH:
                break
    finally:
        cache.delete(FLUSH_LOCK)
    return stored


def pings_store(entries: list[dict[str, Any]]) -> None:
    """Store buffered pings, in order: rows in bulk for a job still steady; the others in full."""
    from monitor_app.services.ingest import report_key
    from monitor_app.services.jobs import SUCCESS, ping_record, steady_success

    checks = {str(pk): check for pk, check in Check.objects.in_bulk({e["c"] for e in entries}).items()}
    rows: list[Ping] = []
    reports: dict[str, tuple[Any, ...]] = {}
    limit = settings.MONITOR_MAX_OUTPUT_BYTES
    for entry in entries:
        check = checks.get(entry["c"])
        if check is None:  # deleted since: its pings went with it
            continue
        at, body, rid = entry["t"], entry["b"], entry["r"]
        steady = steady_success(check, SUCCESS, "")
        older = check.last_report is not None and at <= check.last_report.timestamp()
        if steady or older:
            rows.append(_row(check, entry))
            if steady:
                reports[report_key(check.pk)] = (at, engine.PASSING, body[:limit], len(body) > limit, {})
            continue
        try:
            ping_record(
                check=check,
                kind=SUCCESS,
                exit_status=entry["x"],
                rid=uuid.UUID(rid) if rid else None,
                body=body,
                method=entry["m"],
                remote_addr=entry["a"],
                user_agent=entry["u"],
                now=at,
            )
        except Exception:  # stored as a row at least: an answered ping is never dropped
            log.exception("monitor: a buffered ping could not be applied", extra={"check": entry["c"]})
            rows.append(_row(check, entry))
            continue
        checks[entry["c"]] = Check.objects.get(pk=check.pk)
    with transaction.atomic():
        Ping.objects.bulk_create(rows, batch_size=1000)
    if reports:  # as a slow-path steady ping leaves it (jobs.steady_success)
        longest = max(int(check.interval + check.ttl) for check in checks.values())
        cache.set_many(reports, timeout=longest + 86400)


def _row(check: Check, entry: dict[str, Any]) -> Ping:
    return Ping(
        check_ref=check,
        kind=Ping.Kind.SUCCESS,
        exit_status=entry["x"],
        rid=entry["r"],
        method=entry["m"],
        remote_addr=entry["a"],
        user_agent=entry["u"],
        body=entry["b"],
        at=engine.to_datetime(entry["t"]),
    )
