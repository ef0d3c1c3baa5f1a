"""Request throttling per client, counted in the shared cache so it holds across nodes.

A fixed window costs one cache increment per call (DRF's sliding-window throttles read and
write a list of timestamps instead).  Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``:
``client`` for authenticated callers (per OAuth2 client or user), ``anon`` per IP address.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from auth_app.tokens import TokenInfo

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period[:1].lower()]


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
        rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(scope)
        if not rate:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        key = f"throttle:{scope}:{ident}:{int(now // period)}"
        if cache.add(key, 1, period + 1):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, period + 1)
                count = 1
        if count > limit:
            self.wait_seconds = period - (now % period)
            return False
        return True

    def wait(self) -> float | None:
        return self.wait_seconds
