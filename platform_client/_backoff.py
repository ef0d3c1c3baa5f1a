"""The waits between tries of the SDK's background loops (heartbeats, watches, subscriptions).

Each failure in a row doubles the wait from ``initial`` up to ``maximum``; each wait is less up to
a fifth at random, so that a fleet that lost the platform at the same moment does not come back at
the same moment; it is never shorter than a ``Retry-After`` the platform sent (nor longer than
``maximum``). A success starts it again (:meth:`Backoff.reset`).
"""

from __future__ import annotations

import random


class Backoff:
    """The waits of one loop (not shared between threads)."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.failures = 0

    def next(self, retry_after: float | None = None) -> float:
        """The wait after one more failure in a row."""
        base = min(self.initial * 2 ** min(self.failures, 32), self.maximum)
        self.failures += 1
        return min(max(base * random.uniform(0.8, 1.0), retry_after or 0.0), self.maximum)

    def reset(self) -> None:
        self.failures = 0
