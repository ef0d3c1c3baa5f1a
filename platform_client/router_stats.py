"""Call statistics as the router takes them: mergeable latency histograms and per-window counts.

A latency histogram has fixed buckets shared by every client and the router, so histograms from
any number of callers merge by adding counts.  Bucket ``i`` holds latencies up to
``BASE_MS * 2 ** (i / 4)`` milliseconds (0.1 ms to about two minutes in 82 buckets; each bound is
19% above the previous one, so a quantile read from it is at most 19% high).

:class:`StatsRecorder` counts calls per (target service, node, endpoint) in windows of
``window_seconds`` and hands the closed ones out as the router's ingest shape::

    {"service", "node", "endpoint", "start", "seconds", "requests", "successes", "errors",
     "timeouts", "dropped", "consecutive_5xx", "latency": {"buckets": {"12": 40}, "sum_ms": 512.0}}

This module imports nothing outside the standard library: the router service uses it too.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

BASE_MS = 0.1
#: Buckets per doubling of the latency.
STEPS = 4
BUCKETS = 82
LAST = BUCKETS - 1
_LOG_STEP = STEPS / math.log(2)
_BOUNDS = tuple(BASE_MS * 2 ** (i / STEPS) for i in range(BUCKETS))


def bucket_index(latency_ms: float) -> int:
    """The bucket of a latency (ms): the first whose upper bound holds it (the last holds the rest)."""
    if latency_ms <= BASE_MS:
        return 0
    index = math.ceil(math.log(latency_ms / BASE_MS) * _LOG_STEP - 1e-9)
    return index if index < LAST else LAST


def bucket_bound(index: int) -> float:
    """The upper bound (ms) of bucket ``index``."""
    return _BOUNDS[index]


@dataclass
class Histogram:
    """Latency counts per bucket, with the sum of the latencies (for the mean)."""

    counts: dict[int, int] = field(default_factory=dict)
    sum_ms: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def add(self, latency_ms: float, times: int = 1) -> None:
        index = bucket_index(latency_ms)
        self.counts[index] = self.counts.get(index, 0) + times
        self.sum_ms += latency_ms * times

    def merge(self, other: Histogram) -> Histogram:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.sum_ms += other.sum_ms
        return self

    def mean(self) -> float | None:
        count = self.count
        return self.sum_ms / count if count else None

    def quantile(self, q: float) -> float | None:
        """The upper bound of the bucket holding the ``q`` quantile (None when empty)."""
        total = self.count
        if not total:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return bucket_bound(index)
        return bucket_bound(max(self.counts))

    def to_wire(self) -> dict[str, Any]:
        return {"buckets": {str(i): n for i, n in sorted(self.counts.items()) if n}, "sum_ms": self.sum_ms}

    @classmethod
    def from_wire(cls, value: dict[str, Any] | None) -> Histogram:
        """A histogram from its wire shape (already validated by whoever received it)."""
        if not value:
            return cls()
        return cls(
            {int(i): int(n) for i, n in value.get("buckets", {}).items()}, float(value.get("sum_ms", 0))
        )


@dataclass
class WindowCounts:
    requests: int = 0
    successes: int = 0
    errors: int = 0
    timeouts: int = 0
    dropped: int = 0
    consecutive_5xx: int = 0
    latency: Histogram = field(default_factory=Histogram)


class StatsRecorder:
    """Counts calls per (service, node, endpoint) and window; thread-safe.

    ``record`` is called once per call, ``drop`` for a call not made (rate limit, open breaker),
    ``closed(now)`` hands out the windows that ended before ``now`` (and forgets them).
    """

    def __init__(self, window_seconds: float = 10.0) -> None:
        self.window_seconds = window_seconds
        self._windows: dict[tuple[str, str, str, int], WindowCounts] = {}
        #: The current run of failures per (service, node), carried over windows.
        self._streaks: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _window(self, service: str, node: str, endpoint: str, now: float) -> WindowCounts:
        start = int(now // self.window_seconds * self.window_seconds)
        key = (service, node, endpoint, start)
        counts = self._windows.get(key)
        if counts is None:
            counts = self._windows[key] = WindowCounts()
        return counts

    def record(
        self,
        service: str,
        node: str,
        endpoint: str,
        *,
        ok: bool,
        latency_ms: float,
        now: float,
        timeout: bool = False,
    ) -> None:
        with self._lock:
            counts = self._window(service, node, endpoint, now)
            counts.requests += 1
            counts.latency.add(latency_ms)
            streak_key = (service, node)
            if ok:
                counts.successes += 1
                self._streaks[streak_key] = 0
                return
            if timeout:
                counts.timeouts += 1
            else:
                counts.errors += 1
            streak = self._streaks.get(streak_key, 0) + 1
            self._streaks[streak_key] = streak
            if streak > counts.consecutive_5xx:
                counts.consecutive_5xx = streak

    def drop(self, service: str, node: str, endpoint: str, *, now: float) -> None:
        with self._lock:
            self._window(service, node, endpoint, now).dropped += 1

    def closed(self, now: float, *, everything: bool = False) -> list[dict[str, Any]]:
        """The windows that ended by ``now`` (all of them with ``everything``), in ingest shape."""
        out = []
        with self._lock:
            for key in sorted(self._windows, key=lambda k: k[3]):
                service, node, endpoint, start = key
                if not everything and start + self.window_seconds > now:
                    continue
                counts = self._windows.pop(key)
                out.append(
                    {
                        "service": service,
                        "node": node,
                        "endpoint": endpoint,
                        "start": start,
                        "seconds": int(self.window_seconds),
                        "requests": counts.requests,
                        "successes": counts.successes,
                        "errors": counts.errors,
                        "timeouts": counts.timeouts,
                        "dropped": counts.dropped,
                        "consecutive_5xx": counts.consecutive_5xx,
                        "latency": counts.latency.to_wire(),
                    }
                )
        return out
