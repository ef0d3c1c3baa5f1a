"""Background jobs of the router service (scheduled by beat, see apps.py)."""

from __future__ import annotations

import time

from celery import shared_task

from router_app import services


@shared_task(name="router_app.tasks.evaluate")
def evaluate() -> dict:
    """Merge recent windows across callers and evaluate every service that is due (idempotent)."""
    done = services.evaluate_due(now=time.time())
    return {"services": len(done), "events": sum(e.events for e in done)}


@shared_task(name="router_app.tasks.prune")
def prune() -> dict:
    """Drop stats windows past the kept span, and decisions past ROUTER_EVENT_DAYS."""
    now = time.time()
    return {"windows": services.stats_prune(now=now), "events": services.events_purge(now=now)}
