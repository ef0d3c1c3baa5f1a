"""Python's cyclic garbage collector paused while a bulk call builds and drops its records.

A bulk call of 10,000 records allocates some 100,000 containers that all stay alive until it
answers; each time the allocations cross the collector's thresholds it walks them (and, for a
full collection, every object of the process), which took about a third of such a call.  None
of them is part of a cycle, so nothing is lost by not looking: reference counting frees them as
usual.  The pause is bounded by the call (``DB_MAX_BULK`` records at most), shared by the
threads of the process (the collector runs again when the last paused call ends), and leaves a
collector that something else disabled alone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_paused = 0
_resume = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _paused, _resume
    with _lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _resume:
                gc.enable()
