"""The embedded mode's in-process worker and scheduler.

Without a broker to talk to, ``platform run`` still runs every Celery task of the project on
the schedule in ``CELERY_BEAT_SCHEDULE``: a scheduler thread evaluates the same Celery
schedule objects beat would, and a small thread pool executes the tasks (the same task
functions a Celery worker runs in the distributed mode).  Because it lives in the serving
process, tasks reach websocket clients through the in-memory channel layer.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import schedule as celery_schedule
from django.conf import settings
from django.db import close_old_connections

from platformsite import localstate
from platformsite.celery import app

log = logging.getLogger(__name__)


def _as_schedule(value: Any) -> celery_schedule:
    if isinstance(value, celery_schedule):
        return value
    if isinstance(value, timedelta):
        return celery_schedule(run_every=value)
    return celery_schedule(run_every=timedelta(seconds=float(value)))


def _quiet_celery_successes() -> None:
    """Celery logs every task it runs at INFO ("Task ... succeeded"); the in-process worker logs a
    success at DEBUG itself, so Celery's tracer keeps to warnings (unless configured otherwise)."""
    tracer = logging.getLogger("celery.app.trace")
    if tracer.level == logging.NOTSET:
        tracer.setLevel(logging.WARNING)


class InProcessWorker:
    """Runs project tasks on a thread pool and the beat schedule on a scheduler thread."""

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._pool is not None

    def beating(self) -> bool:
        scheduler = self._scheduler
        return scheduler is not None and scheduler.is_alive()

    def start(self, *, beat: bool = True) -> None:
        with self._lock:
            if self._pool is not None:
                return
            app.loader.import_default_modules()
            _quiet_celery_successes()
            self._stop.clear()
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="platform-task")
            if beat:
                self._scheduler = threading.Thread(target=self._beat, name="platform-beat", daemon=True)
                self._scheduler.start()
        log.info("in-process worker started", extra={"threads": self._threads, "beat": beat})

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
            if self._scheduler is not None:
                self._scheduler.join(timeout=5)
                self._scheduler = None
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def submit(self, name: str, args: tuple = (), kwargs: dict | None = None, countdown: float = 0) -> None:
        if countdown > 0 and self._pool is not None:
            timer = threading.Timer(countdown, self._submit_due, (name, args, kwargs))
            timer.daemon = True
            timer.start()
            return
        pool = self._pool
        if pool is None:
            # Not started (a management command, a shell): run it here rather than drop it.
            self._run(name, args, kwargs or {})
            return
        pool.submit(self._run, name, args, kwargs or {})

    def _submit_due(self, name: str, args: tuple, kwargs: dict | None) -> None:
        if not self._stop.is_set():  # a worker stopped meanwhile drops it (beat finds due work again)
            self.submit(name, args, kwargs)

    def _run(self, name: str, args: tuple, kwargs: dict) -> None:
        close_old_connections()
        started = time.perf_counter()
        try:
            result = app.tasks[name].apply(args=args, kwargs=kwargs)
            if result.failed():
                log.error("task failed", extra={"task": name, "error": repr(result.result)})
            else:  # the schedule runs some tasks every second: a success is no news
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                log.debug("task succeeded", extra={"task": name, "duration_ms": duration_ms})
        except Exception:
            log.exception("task crashed", extra={"task": name})
        finally:
            close_old_connections()

    def _beat(self) -> None:
        entries = {
            key: (
                entry["task"],
                _as_schedule(entry["schedule"]),
                tuple(entry.get("args", ())),
                dict(entry.get("kwargs", {})),
            )
            for key, entry in settings.CELERY_BEAT_SCHEDULE.items()
        }
        last_run = dict.fromkeys(entries, datetime.now(UTC))
        while not self._stop.is_set():
            wait = 60.0
            for key, (task, sched, args, kwargs) in entries.items():
                due, next_in = sched.is_due(last_run[key])
                if due:
                    last_run[key] = datetime.now(UTC)
                    self.submit(task, args, kwargs)
                wait = min(wait, max(float(next_in), 0.05))
            self._stop.wait(wait)


worker = InProcessWorker()
localstate.register_thread("platform-tasks", alive=lambda: worker.running)
localstate.register_thread("platform-beat", alive=worker.beating)
