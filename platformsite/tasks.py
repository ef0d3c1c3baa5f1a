"""Enqueueing background work the same way in every runtime mode.

Services call :func:`enqueue` inside their transaction; the task is sent only once the
transaction commits, so a worker never sees ids of rows that do not exist yet (or never will).
Where it runs depends on ``PLATFORM_TASK_MODE``: a Celery worker, the embedded in-process
worker (:mod:`platformsite.background`), or inline (tests).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    """Run ``task(*args, **kwargs)`` in the background once the current transaction commits."""
    transaction.on_commit(partial(dispatch, task, args, kwargs))


def dispatch(task: Task, args: tuple = (), kwargs: dict | None = None, *, countdown: float = 0) -> None:
    """Hand a task to whatever runs background work in this mode, now or in ``countdown`` seconds.

    The inline mode (tests) cannot wait: a task due later is not run there, so callers use a
    countdown only for work that beat also finds (a retry that falls due, say).
    """
    kwargs = kwargs or {}
    mode = settings.PLATFORM_TASK_MODE
    if mode == "celery":
        task.apply_async(args=args, kwargs=kwargs, countdown=countdown or None)
    elif mode == "thread":
        from platformsite.background import worker

        if not worker.running:
            worker.start(beat=False)
        worker.submit(task.name, args, kwargs, countdown=countdown)
    elif not countdown:
        task.apply(args=args, kwargs=kwargs, throw=True)
