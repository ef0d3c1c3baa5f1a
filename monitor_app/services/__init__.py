"""Writes of the monitor service, one module per use case.

* :mod:`.reports`: a node's report read and checked (check results, status, stats);
* :mod:`.ingest`: node reports applied (check results, status, stats), the cache-only path for results
  that change nothing;
* :mod:`.engine`: the state engine (thresholds, failure rate, flapping) and its compare-and-set
  writes;
* :mod:`.jobs`: job checks and their pings;
* :mod:`.alerts`: alerts as platform events (the outbox), reminders, silences;
* :mod:`.health`: service health from its nodes' checks;
* :mod:`.loop`: the state loop (overdue checks, reminders, held-back alerts, the outbox);
* :mod:`.history`: uptime, stats downsampling, retention;
* :mod:`.manage`: operators' writes (check settings, maintenance windows).
"""

from monitor_app.services.alerts import alerts_publish, alerts_reconcile, reminders_due
from monitor_app.services.engine import check_apply, check_expire, evaluate
from monitor_app.services.history import flips_purge, stats_downsample, stopped_nodes_purge
from monitor_app.services.ingest import reports_ingest
from monitor_app.services.jobs import job_by_slug, job_create, key_create, ping_record, pings_purge
from monitor_app.services.loop import monitor_tick
from monitor_app.services.manage import (
    check_delete,
    check_update,
    maintenance_create,
    maintenance_end,
    service_settings,
)
from monitor_app.services.reports import parse_batch, parse_report

__all__ = [
    "alerts_publish",
    "alerts_reconcile",
    "check_apply",
    "check_delete",
    "check_expire",
    "check_update",
    "evaluate",
    "flips_purge",
    "job_by_slug",
    "job_create",
    "key_create",
    "maintenance_create",
    "maintenance_end",
    "monitor_tick",
    "parse_batch",
    "parse_report",
    "ping_record",
    "pings_purge",
    "reminders_due",
    "reports_ingest",
    "service_settings",
    "stats_downsample",
    "stopped_nodes_purge",
]
