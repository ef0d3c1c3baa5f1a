"""Background jobs: enqueued after commit, and the embedded worker runs the beat schedule."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from celery import shared_task
from django.db import transaction

from platformsite.background import InProcessWorker
from platformsite.tasks import enqueue

CALLS: list[tuple] = []
RAN = threading.Event()


@shared_task(name="tests.record_call")
def record_call(*args, **kwargs) -> None:
    CALLS.append((args, kwargs))
    RAN.set()


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()
    RAN.clear()


@pytest.mark.django_db(transaction=True)
def test_enqueue__runs_only_after_commit():
    # when enqueued inside a transaction
    with transaction.atomic():
        enqueue(record_call, 1, key="v")
        # then nothing ran yet
        assert CALLS == []
    # and it ran once the transaction committed
    assert CALLS == [((1,), {"key": "v"})]


@pytest.mark.django_db(transaction=True)
def test_enqueue__rolled_back_transaction__never_runs():
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue(record_call, 2)
        raise RuntimeError("rollback")
    assert CALLS == []


@pytest.mark.django_db(transaction=True)
def test_enqueue__thread_mode__runs_on_the_in_process_worker(settings):
    settings.PLATFORM_TASK_MODE = "thread"
    from platformsite.background import worker

    try:
        enqueue(record_call, 3)
        assert RAN.wait(5)
        assert CALLS == [((3,), {})]
    finally:
        worker.stop()


def test_dispatch__countdown__thread_mode_runs_it_then_and_inline_mode_leaves_it(settings):
    from platformsite.background import worker
    from platformsite.tasks import dispatch

    # inline: a task due later is not run (beat's scans find such work)
    dispatch(record_call, (4,), countdown=0.2)
    assert CALLS == []
    # thread mode: run once the countdown has passed
    settings.PLATFORM_TASK_MODE = "thread"
    try:
        started = time.monotonic()
        dispatch(record_call, (5,), countdown=0.3)
        assert RAN.wait(5)
        assert time.monotonic() - started >= 0.3
        assert CALLS == [((5,), {})]
    finally:
        worker.stop()


def test_in_process_worker__runs_the_beat_schedule(settings):
    # given a schedule entry every 0.2 s
    settings.CELERY_BEAT_SCHEDULE = {
        "probe": {"task": "tests.record_call", "schedule": 0.2, "args": ("beat",)}
    }
    worker = InProcessWorker(threads=1)
    # when the worker runs for a while
    worker.start(beat=True)
    try:
        deadline = time.monotonic() + 5
        while len(CALLS) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    # then the task ran on schedule, more than once
    assert len(CALLS) >= 2
    assert all(call == (("beat",), {}) for call in CALLS)


def test_every_scheduled_task__is_a_registered_task(settings):
    from platformsite.celery import app

    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


class _Records(logging.Handler):
    """Records kept on the loggers themselves: starting the worker re-runs django.setup(), whose
    logging configuration replaces the root handlers (caplog's among them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def task_logs():
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("platformsite.background", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(records)
    loggers[0].setLevel(logging.DEBUG)
    yield records.records
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(records)
        logger.setLevel(level)


def test_in_process_worker__a_scheduled_success__is_logged_at_debug_only(settings, task_logs):
    # given a schedule entry every 0.2 s
    settings.CELERY_BEAT_SCHEDULE = {
        "probe": {"task": "tests.record_call", "schedule": 0.2, "args": ("beat",)}
    }
    worker = InProcessWorker(threads=1)
    # when the beat runs it
    worker.start(beat=True)
    try:
        assert RAN.wait(5)
    finally:
        worker.stop()
    # then its success is written at DEBUG by the worker, and Celery's INFO line is not written
    successes = [r for r in task_logs if getattr(r, "task", None) == "tests.record_call"]
    assert successes and all(
        (r.name, r.levelno, r.getMessage()) == ("platformsite.background", logging.DEBUG, "task succeeded")
        for r in successes
    )
    assert successes[0].duration_ms >= 0
    assert not [r for r in task_logs if r.name == "celery.app.trace" and r.levelno < logging.WARNING]


def test_in_process_worker__a_failed_task__is_logged_as_an_error(task_logs):
    InProcessWorker(threads=1)._run("tests.fail", (), {})
    assert ("platformsite.background", logging.ERROR, "task failed") in [
        (r.name, r.levelno, r.getMessage()) for r in task_logs
    ]


@shared_task(name="tests.fail")
def fail() -> None:
    raise RuntimeError("boom")
