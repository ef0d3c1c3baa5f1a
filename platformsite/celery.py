"""The Celery application: configured from Django settings (``CELERY_*``), tasks found per app.

Database connections in a worker: each process keeps its connection pool for its lifetime (Celery's
own fix-up would close it around every task, see ``CELERY_DB_REUSE_MAX``); around each task the
connection is handed back to the pool, or dropped when it broke, as Django does at the start and
end of a web request.  Tasks run eagerly (tests, the embedded mode's inline calls) are left alone:
they run inside the caller's request and transaction.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")

app = Celery("platformsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def release_connections(task: Any = None, **kwargs: Any) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
