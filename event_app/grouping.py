"""Group commit: concurrent small publishes in one process share one transaction.

A durable single-event publish is bound by its transaction: a round trip for the statement,
one for the COMMIT and its WAL flush, on both sides of the connection.  On PostgreSQL, the
requests of one worker process therefore hand their events to a writer thread instead of each
opening a transaction: the thread takes everything that queued up while it was writing, stores
it with :func:`event_app.services.events_store` (one multi-row statement, which in autocommit is
its own transaction, when no webhook takes the events), and only then wakes the requests.
Under light load a group is one request and costs one thread hand-off; under heavy load the
per-event cost of the transaction shrinks with the group.

Each request still answers only after its events are committed, keeps its own ``created`` /
``duplicate`` answers (an event re-sent by two requests in the same group is created for the
first and a duplicate for the second), and fails alone: if a group's transaction fails, its
requests are stored one by one, so a bad request cannot fail its neighbours.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection

from event_app.cloudevents import EventIn
from platformsite import localstate

log = logging.getLogger(__name__)

#: Requests with more events than this are stored by their own thread (they are batches already).
MAX_GROUPED_EVENTS = 50
#: Most events the writer puts into one transaction.
MAX_GROUP_EVENTS = 1000
#: The writer keeps its database connection between groups, and gives it back after this long idle.
IDLE_SECONDS = 1.0


@dataclass(eq=False)
class _Job:
    events: list[EventIn]
    done: threading.Event = field(default_factory=threading.Event)
    result: list | None = None
    error: BaseException | None = None


class GroupCommitter:
    """One writer thread per process (started on first use, again after a fork)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def alive(self) -> bool:
        thread = self._thread
        return self._pid == os.getpid() and thread is not None and thread.is_alive()

    def store(self, events: list[EventIn]) -> list:
        self._ensure_thread()
        job = _Job(events)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, name="events-group-commit", daemon=True)
                self._thread.start()
                self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            try:
                jobs = [self._queue.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                connection.close()  # idle: back to the pool (no session held by a quiet process)
                jobs = [self._queue.get()]
            size = len(jobs[0].events)
            while size < MAX_GROUP_EVENTS:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                jobs.append(job)
                size += len(job.events)
            try:
                self._write(jobs)
            except Exception as exc:  # the writer must not die: fail these requests, serve the next
                log.exception("events: group commit failed")
                for job in jobs:
                    if not job.done.is_set():
                        job.error = exc
                        job.done.set()

    def _write(self, jobs: list[_Job], *, reconnected: bool = False) -> None:
        from event_app.services import events_store

        try:
            stored = events_store(events=[event for job in jobs for event in job.events])
        except Exception as exc:
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()  # a broken one is replaced next time
                if connection.connection is None and not reconnected:
                    # The kept connection died between groups (a server restart, an idle timeout).
                    # Writing is idempotent (ON CONFLICT DO NOTHING): try once more on a new one.
                    self._write(jobs, reconnected=True)
                    return
            if len(jobs) > 1:
                for job in jobs:  # find the request at fault: each on its own
                    self._write([job], reconnected=True)
                return
            jobs[0].error = exc
            jobs[0].done.set()
            return
        _hand_out(stored, jobs)
        for job in jobs:
            job.done.set()


def _hand_out(stored: list, jobs: list[_Job]) -> None:
    """Give each job the results of its own events; a key two jobs sent is created only once."""
    from event_app.services import Stored

    by_key = {(item.event.source, item.event.event_id): item for item in stored}
    claimed: set[tuple[str, str]] = set()
    for job in jobs:
        result = []
        for key in dict.fromkeys((event.source, event.event_id) for event in job.events):
            item = by_key[key]
            result.append(Stored(item.event, item.created and key not in claimed))
            claimed.add(key)
        job.result = result


_committer = GroupCommitter()
localstate.register_thread("events-group-commit", alive=_committer.alive)


def available() -> bool:
    """Whether this thread's publishes may go through the writer thread at all: PostgreSQL, and
    no transaction of the caller's open (its events must be part of that transaction)."""
    return (
        settings.EVENTS_GROUP_COMMIT and connection.vendor == "postgresql" and not connection.in_atomic_block
    )


def groupable(events: list[EventIn]) -> bool:
    """Whether these events may go through the writer thread: :func:`available`, and a small
    request."""
    return len(events) <= MAX_GROUPED_EVENTS and available()


def store_grouped(events: list[EventIn]) -> list:
    return _committer.store(events)
