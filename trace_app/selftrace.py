"""The platform tracing itself (``PLATFORM_SELF_TRACE``): a server span per sampled request it
answers, full Django stack and hot path alike, stored through the same ingest as any service's.

A request is traced when its ``traceparent`` says sampled (the caller's trace continues; its span
is the parent), or, without one, with probability ``PLATFORM_SELF_TRACE_RATIO``; a
``traceparent`` that says not sampled is respected.  Spans are queued by the request's thread and
stored every second by one background thread per process, through ``ingest_spans`` (not over
HTTP): tracing never calls the platform, and the trace ingest endpoints are never traced, so it
cannot feed itself.  The queue holds at most ``QUEUE_MAX`` spans; past that spans are dropped and
counted (``dropped``).
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections import deque
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from platformsite import localstate, observers
from trace_app.apps import TraceAppConfig
from trace_app.decoding.common import new_span

log = logging.getLogger(__name__)

QUEUE_MAX = 10_000
FLUSH_SECONDS = 1.0
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


class SelfTracer:
    def __init__(self) -> None:
        self.queue: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        # Trace ingest is never traced (tracing would feed itself), nor are probes and scrapes.
        self.skipped = (*TraceAppConfig.ingest_paths, "/healthz", "/readyz", "/metrics")

    def alive(self) -> bool:
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def observe(self, observed: observers.Observed) -> None:
        if observed.path.startswith(self.skipped):
            return
        parent = ""
        match = _TRACEPARENT.fullmatch(observed.meta.get("HTTP_TRACEPARENT", ""))
        if match:
            if not int(match.group(3), 16) & 1:
                return
            trace_id, parent = match.group(1), match.group(2)
        elif random.random() < settings.PLATFORM_SELF_TRACE_RATIO:
            trace_id = os.urandom(16).hex()
        else:
            return
        if len(self.queue) >= QUEUE_MAX:
            self.dropped += 1
            return
        route = "" if observed.route == "unmatched" else observed.route
        self.queue.append(
            new_span(
                trace=trace_id,
                span=os.urandom(8).hex(),
                parent=parent,
                name=f"{observed.method} /{route}" if route else observed.method,
                kind="SERVER",
                service=settings.PLATFORM_SELF_TRACE_SERVICE,
                timestamp=int(observed.started * 1_000_000),
                duration=int(observed.duration * 1_000_000),
                tags={
                    "http.request.method": observed.method,
                    "http.route": "/" + route if route else "",
                    "url.path": observed.path[:1000],
                    "http.response.status_code": str(observed.status),
                    **({"error": str(observed.status)} if observed.status >= 500 else {}),
                },
                resource={"service.name": settings.PLATFORM_SELF_TRACE_SERVICE},
                scope={"name": "micro-platform"},
            )
        )
        self._ensure()

    def flush(self) -> int:
        """Store what is queued; the number of spans stored."""
        from trace_app.services import ingest_spans

        spans = []
        while self.queue and len(spans) < 1000:
            spans.append(self.queue.popleft())
        if not spans:
            return 0
        return ingest_spans(spans).stored

    def _ensure(self) -> None:
        if self.alive():
            return
        with self._lock:
            if self.alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="trace-self-export", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                close_old_connections()
                while self.flush():
                    pass
            except Exception:
                log.exception("trace: storing the platform's own spans failed")
            finally:
                close_old_connections()


tracer = SelfTracer()
localstate.register_thread("trace-self-export", alive=tracer.alive)
