"""Request throttling per client, counted in the shared cache so it holds across nodes.

A fixed one-minute (or second, hour, day) window per client.  Each process counts calls in its
own memory and adds them to the shared counter (one cache round trip) at most every
``FLUSH_SECONDS`` or every ``1%`` of the limit, whichever comes first; a call is refused when
the shared count it last saw plus its own unflushed calls pass the limit.  So a warm API call
usually costs no cache round trip, and the limit holds across nodes up to the calls other
processes made since their last flush (at most 250 ms of their traffic, or 1% of the limit
each).  Small limits (under 100 per window) are counted exactly, one round trip per call.
While the shared cache is unreachable (Redis restarting) each process counts alone, so the
limit holds per process until it is back.

Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``: ``client`` for authenticated callers
(per OAuth2 client or user), ``anon`` per IP address.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from auth_app.access import TokenInfo
from platformsite import localstate
from platformsite.cache import CACHE_DOWN, shared_add

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FLUSH_SECONDS = 0.25


#: The caller's address as every throttle counts it (``request.META``): ``REMOTE_ADDR``, or behind
#: ``PLATFORM_TRUSTED_PROXIES`` reverse proxies the ``X-Forwarded-For`` entry the outermost one
#: added (DRF's ``NUM_PROXIES``; a header no trusted proxy wrote is ignored).
client_address = BaseThrottle().get_ident


def parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period[:1].lower()]


@dataclass
class _Window:
    number: int
    seen: int = 0  # the shared count at the last flush
    pending: int = 0  # this process's calls not yet added to it
    next_flush: float = 0.0


class _Counters:
    def __init__(self) -> None:
        self.windows: dict[str, _Window] = {}
        self.lock = threading.Lock()

    def count(self, key: str, window: int, period: int, limit: int, now: float) -> int:
        """Count one call; the best estimate of the calls in this window across every process."""
        with self.lock:
            state = self.windows.get(key)
            if state is None or state.number != window:
                if len(self.windows) > 100_000:
                    self.windows.clear()
                state = self.windows[key] = _Window(window)
            state.pending += 1
            flush = now >= state.next_flush or state.pending >= max(1, limit // 100)
            if not flush:
                return state.seen + state.pending
            pending, state.pending = state.pending, 0
            state.next_flush = now + FLUSH_SECONDS
        try:
            total = shared_add(f"throttle:{key}:{window}", pending, period + 1)
        except CACHE_DOWN:
            # The shared cache is down: count in this process until it is back (the limit then
            # holds per process), rather than refusing every call while it restarts.
            with self.lock:
                state.pending += pending
                return state.seen + state.pending
        with self.lock:
            state.seen = max(state.seen, total)
            return state.seen + state.pending


_counters = _Counters()
localstate.register_cache(
    "platform.throttle_windows", size=lambda: len(_counters.windows), reset=_counters.windows.clear
)


def wait_seconds(scope: str, ident: str, rate: str | None = None) -> float | None:
    """Count one call of ``ident`` against the ``scope`` rate (or ``rate``, a service's own, e.g.
    the monitor's ping rates): None if allowed, else the seconds until its window ends."""
    rate = rate or settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(scope)
    if not rate:
        return None
    limit, period = parse_rate(rate)
    now = time.time()
    count = _counters.count(f"{scope}:{ident}", int(now // period), period, limit, now)
    if count > limit:
        return period - (now % period)
    return None


class ClientRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        if isinstance(request.auth, TokenInfo):
            scope, ident = "client", request.auth.client_id
        elif request.user and request.user.is_authenticated:
            scope, ident = "client", f"user:{request.user.pk}"
        else:
            scope, ident = "anon", self.get_ident(request)
        self.wait_seconds = wait_seconds(scope, ident)
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds
