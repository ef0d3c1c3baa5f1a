"""Enqueueing background work the same way in every runtime mode.

Services call :func:`enqueue` inside their transaction; the task is sent only once the
transaction commits, so a worker never sees ids of rows that do not exist yet (or never will).
Where it runs depends on ``PLATFORM_TASK_MODE``: a Celery worker, the embedded in-process
worker (:mod:`platformsite.background`), or inline (tests).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import TimeoutError as RedisTimeoutError

from platformsite.cache import CACHE_DOWN, redis_guard

log = logging.getLogger(__name__)


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    """Run ``task(*args, **kwargs)`` in the background once the current transaction commits.

    Only for work that is stored and that a periodic task (beat) also finds, such as webhook
    deliveries: when the broker cannot be reached at commit, the write that committed is not
    failed for it (its caller gets its answer), and the periodic task starts the work."""
    transaction.on_commit(partial(_sent_or_left_to_beat, task.name, partial(dispatch, task, args, kwargs)))


def _sent_or_left_to_beat(name: str, send: Callable[[], None]) -> None:
    try:
        send()
    except (*CACHE_DOWN, KombuOperationalError) as exc:
        log.warning("%s not sent, the broker is unavailable (%s): its periodic task will start it", name, exc)


def dispatch(task: Task, args: tuple = (), kwargs: dict | None = None, *, countdown: float = 0) -> None:
    """Hand a task to whatever runs background work in this mode, now or in ``countdown`` seconds.

    The inline mode (tests) cannot wait: a task due later is not run there, so callers use a
    countdown only for work that beat also finds (a retry that falls due, say).
    """
    kwargs = kwargs or {}
    mode = settings.PLATFORM_TASK_MODE
    if mode == "celery":
        _publish(task, args, kwargs, countdown)
    elif mode == "thread":
        from platformsite.background import worker

        if not worker.running:
            worker.start(beat=False)
        worker.submit(task.name, args, kwargs, countdown=countdown)
    elif not countdown:
        task.apply(args=args, kwargs=kwargs, throw=True)


def _publish(task: Task, args: tuple, kwargs: dict, countdown: float) -> None:
    """Send the task to the broker; at once :class:`~platformsite.cache.RedisDown` while Redis is
    known not to answer, rather than a publish waiting out its socket timeout again."""
    send = partial(task.apply_async, args=args, kwargs=kwargs, countdown=countdown or None)
    redis_guard().call(send, timed_out=_timed_out)


def _timed_out(exc: Exception) -> bool:
    """Whether kombu gave up on a broker that did not answer (it may wrap redis-py's error)."""
    return isinstance(exc, RedisTimeoutError) or isinstance(exc.__cause__, RedisTimeoutError)
