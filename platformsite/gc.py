"""Garbage collection tuned for long-running server processes.

A warm worker holds a few hundred thousand long-lived objects (modules, URL patterns, compiled
policies, cached documents).  CPython's full collection walks all of them, which stops every
thread of the process for tens of milliseconds, every few thousand requests: it showed up as
the p99 of every read benchmark, and as ~10% of the CPU per request.  Once the process has
served its first requests (so that lazily built state exists), everything alive is moved out
of the collector's sight with ``gc.freeze()``; later collections only walk what requests
create.  Objects that become garbage after the freeze are leaked by the collector only if they
sit in reference cycles, which the long-lived state does not create.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable
from typing import Any

#: Requests a process serves before it freezes what it has built.
WARMUP_REQUESTS = 500


def freeze() -> None:
    """Collect once, then exempt every surviving object from future collections."""
    gc.collect()
    gc.freeze()


class FreezeAfterWarmup:
    """WSGI middleware: :func:`freeze` once, after the process's first ``after`` requests."""

    def __init__(self, app: Callable[..., Iterable[bytes]], after: int = WARMUP_REQUESTS) -> None:
        self.app = app
        self.after = after
        self.served = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.served < self.after:
            with self._lock:
                self.served += 1
                if self.served == self.after:
                    freeze()
        return self.app(environ, start_response)
