"""The SDK selector's local decisions: circuit breaker, token bucket and retry budget.

All take the current time (``time.monotonic()`` seconds) as an argument, so they can be driven
by a simulated clock.  Standard library only.
"""

from __future__ import annotations

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Breaker:
    """A node's circuit breaker, with Hystrix's defaults.

    Closed, it counts calls in a rolling ``window`` (10 s, in 1 s buckets); once at least
    ``volume`` calls (20) were made in the window and ``error_percent`` (50) of them failed, it
    opens.  Open, it refuses calls for ``sleep`` seconds (5), then lets one trial through
    (half-open): a success closes it, a failure opens it again.
    """

    __slots__ = ("_buckets", "error_percent", "opened_at", "sleep", "state", "trial", "volume", "window")

    def __init__(
        self, volume: int = 20, error_percent: float = 50.0, sleep: float = 5.0, window: float = 10.0
    ) -> None:
        self.volume = volume
        self.error_percent = error_percent
        self.sleep = sleep
        self.window = window
        self.state = CLOSED
        self.opened_at = 0.0
        self.trial = False
        #: [second, calls, failures] per 1-second bucket of the window.
        self._buckets: list[list[int]] = []

    def available(self, now: float) -> bool:
        """May a call go through now?  (No side effect: :meth:`picked` takes the trial.)"""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return now - self.opened_at >= self.sleep
        return not self.trial

    def picked(self, now: float) -> None:
        """A call was sent through: an open breaker past its sleep turns half-open, its trial taken."""
        if self.state == OPEN and now - self.opened_at >= self.sleep:
            self.state = HALF_OPEN
            self.trial = False
        if self.state == HALF_OPEN:
            self.trial = True

    def record(self, ok: bool, now: float) -> None:
        if self.state == HALF_OPEN:
            if ok:
                self.state, self.trial = CLOSED, False
                self._buckets.clear()
            else:
                self.state, self.opened_at, self.trial = OPEN, now, False
            return
        if self.state == OPEN:
            return  # a call sent before it opened: already counted against it
        second = int(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
        else:
            bucket = [second, 0, 0]
            buckets.append(bucket)
            oldest = second - int(self.window) + 1
            while buckets[0][0] < oldest:
                buckets.pop(0)
        bucket[1] += 1
        if not ok:
            bucket[2] += 1
            calls = sum(b[1] for b in buckets)
            failures = sum(b[2] for b in buckets)
            if calls >= self.volume and failures * 100 >= self.error_percent * calls:
                self.state, self.opened_at, self.trial = OPEN, now, False
                buckets.clear()


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` held; a call takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate) if self.rate > 0 else 60.0


class RetryBudget:
    """Retries allowed: ``percent`` (20) of the calls of the last ``window`` seconds, at least
    ``minimum`` (3)."""

    __slots__ = ("_calls", "_previous", "_retries", "_start", "minimum", "percent", "window")

    def __init__(self, percent: float = 20.0, minimum: int = 3, window: float = 10.0) -> None:
        self.percent = percent
        self.minimum = minimum
        self.window = window
        self._start = 0.0
        self._calls = 0
        self._retries = 0
        self._previous = (0, 0)

    def _roll(self, now: float) -> None:
        if now - self._start >= self.window:
            fresh = now - self._start >= 2 * self.window
            self._previous = (0, 0) if fresh else (self._calls, self._retries)
            self._start, self._calls, self._retries = now, 0, 0

    def call(self, now: float) -> None:
        self._roll(now)
        self._calls += 1

    def try_retry(self, now: float) -> bool:
        """Take a retry from the budget if one is left (counted over this window and the last)."""
        self._roll(now)
        calls = self._calls + self._previous[0]
        retries = self._retries + self._previous[1]
        if retries < max(self.minimum, calls * self.percent / 100):
            self._retries += 1
            return True
        return False
