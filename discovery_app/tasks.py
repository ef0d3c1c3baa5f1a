"""Background jobs of the discovery service (scheduled by beat, see app_settings)."""

from __future__ import annotations

from celery import shared_task

from discovery_app import services


@shared_task(name="discovery_app.tasks.sweep")
def sweep() -> dict:
    """Expire, deregister and flush heartbeats (idempotent; one at a time across workers)."""
    report = services.registry_sweep()
    return {
        "expired": len(report.expired),
        "deregistered": len(report.deregistered),
        "held": len(report.held),
        "degraded": report.degraded,
        "skipped": report.skipped,
    }


@shared_task(name="discovery_app.tasks.purge_results")
def purge_results() -> int:
    """Drop watch history older than DISCOVERY_HISTORY_SECONDS."""
    return services.results_purge()
