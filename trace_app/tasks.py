"""Background work of the trace service: day partitions ahead of time, and retention."""

from __future__ import annotations

from celery import shared_task

from trace_app import services


@shared_task(name="trace_app.tasks.ensure_partitions")
def ensure_partitions() -> list[str]:
    """Create today's and the next days' span partitions (PostgreSQL; hourly)."""
    return services.ensure_partitions()


@shared_task(name="trace_app.tasks.expire_spans")
def expire_spans() -> int:
    """Drop spans past their retention (hourly)."""
    return services.expire_spans()
