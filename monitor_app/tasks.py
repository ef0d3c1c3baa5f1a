"""Background jobs of the monitor service (scheduled by beat, see apps.py)."""

from __future__ import annotations

import time

from celery import shared_task
from django.utils import timezone

from monitor_app import services


@shared_task(name="monitor_app.tasks.tick")
def tick() -> dict:
    """The state loop: overdue checks, reminders, held-back alerts, the outbox (idempotent)."""
    return services.monitor_tick(now=time.time()).as_dict()


@shared_task(name="monitor_app.tasks.downsample")
def downsample() -> dict:
    """Stats samples: raw to minutes, minutes to hours, old hours dropped."""
    return services.stats_downsample(now=timezone.now())


@shared_task(name="monitor_app.tasks.purge")
def purge() -> dict:
    """Old pings, flips and stopped nodes."""
    now = timezone.now()
    return {
        "pings": services.pings_purge(),
        "flips": services.flips_purge(now=now),
        "stopped_nodes": services.stopped_nodes_purge(now=now),
    }
