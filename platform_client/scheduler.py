"""One background thread running periodic jobs: what ``Platform`` gives its modules.

```python
from platform_client.scheduler import Scheduler

scheduler = Scheduler()
job = scheduler.every(5.0, lambda: print("tick"), jitter=0.1)
...
job.cancel()
scheduler.close()  # waits for the job running now, then the thread ends
```

A job that raises is logged and runs again at its next time (a failing job never stops the
others); ``jitter`` spreads a fleet's calls (each wait is ``interval * (1 ± jitter)``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from platform_client._checks import seconds

log = logging.getLogger(__name__)

__all__ = ["Job", "Scheduler"]


class Job:
    """A periodic call; :meth:`cancel` stops it (a run in progress finishes)."""

    def __init__(self, scheduler: Scheduler, interval: float, fn: Callable[[], Any], jitter: float) -> None:
        self.scheduler, self.interval, self.fn, self.jitter = scheduler, interval, fn, jitter
        self.cancelled = False
        self.runs = 0
        self.failures = 0

    def next_wait(self) -> float:
        if not self.jitter:
            return self.interval
        return self.interval * (1 + random.uniform(-self.jitter, self.jitter))

    def cancel(self) -> None:
        self.cancelled = True
        self.scheduler._wake.set()


class Scheduler:
    """Runs jobs at their times on one daemon thread, started with the first job."""

    def __init__(self, name: str = "platform-scheduler", clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def every(self, interval: float, fn: Callable[[], Any], *, jitter: float = 0.0, now: bool = False) -> Job:
        """Call ``fn`` every ``interval`` seconds (first at once with ``now``)."""
        interval = seconds(interval, "interval")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self._closed.is_set():
            raise RuntimeError("the scheduler is closed")
        job = Job(self, interval, fn, jitter)
        self._push(job, 0.0 if now else job.next_wait())
        return job

    def call_later(self, delay: float, fn: Callable[[], Any]) -> Job:
        """Call ``fn`` once after ``delay`` seconds."""
        job = Job(self, max(delay, 1e-9), fn, 0.0)
        job.interval = 0.0  # once
        self._push(job, max(delay, 0.0))
        return job

    def _push(self, job: Job, delay: float) -> None:
        with self._lock:
            heapq.heappush(self._heap, (self.clock() + delay, next(self._order), job))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                due = self._heap[0][0] if self._heap else None
                job = None
                if due is not None and due <= self.clock():
                    job = heapq.heappop(self._heap)[2]
                self._wake.clear()
            if job is None:
                self._wake.wait(None if due is None else max(due - self.clock(), 0.0))
                continue
            try:
                job.fn()
                job.runs += 1
            except Exception:
                job.failures += 1
                log.warning("scheduler: job %r failed (runs again at its next time)", job.fn, exc_info=True)
            if job.interval and not job.cancelled and not self._closed.is_set():
                with self._lock:
                    heapq.heappush(self._heap, (self.clock() + job.next_wait(), next(self._order), job))

    @property
    def jobs(self) -> int:
        with self._lock:
            return sum(1 for _, _, job in self._heap if not job.cancelled)

    def close(self, timeout: float = 5.0) -> None:
        """Stop: no job starts any more; waits up to ``timeout`` for the one running now."""
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
