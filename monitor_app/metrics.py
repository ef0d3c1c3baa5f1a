"""The fleet's gauges in ``/metrics``, read from the database at scrape time.

Per service: ``platform_monitor_service_nodes``, ``..._nodes_passing``, ``..._healthy`` (1, 0,
or absent while unknown) and ``platform_monitor_checks`` by state. Label sets are bounded: the
first ``MONITOR_METRICS_MAX_SERVICES`` services by name are reported one by one, the rest summed
under ``service="_other"``; states are the four of the engine.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.conf import settings
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from monitor_app.models import Check, ServiceHealth, State

log = logging.getLogger(__name__)
OTHER = "_other"


class FleetCollector:
    def collect(self):
        try:
            healths = list(
                ServiceHealth.objects.order_by("name").values_list("name", "status", "nodes", "passing")
            )
            counts = list(
                Check.objects.values("service", "status")
                .annotate(n=Count("id"))
                .values_list("service", "status", "n")
            )
        except Exception:  # no database reachable from this scrape: the other metrics still answer
            log.debug("monitor: fleet metrics unavailable", exc_info=True)
            return
        kept = {name for name, *_ in healths[: settings.MONITOR_METRICS_MAX_SERVICES]}
        label = lambda name: name if name in kept else OTHER  # noqa: E731
        nodes = GaugeMetricFamily("platform_monitor_service_nodes", "Nodes of a service.", labels=["service"])
        passing = GaugeMetricFamily(
            "platform_monitor_service_nodes_passing",
            "Nodes passing all their critical checks.",
            labels=["service"],
        )
        healthy = GaugeMetricFamily(
            "platform_monitor_service_healthy",
            "1 healthy, 0 degraded (absent while unknown).",
            labels=["service"],
        )
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for name, status, node_count, passing_count in healths:
            totals[label(name)][0] += node_count
            totals[label(name)][1] += passing_count
            if name in kept and status != ServiceHealth.Status.UNKNOWN:
                healthy.add_metric([name], 1.0 if status == ServiceHealth.Status.HEALTHY else 0.0)
        for name, (node_count, passing_count) in sorted(totals.items()):
            nodes.add_metric([name], node_count)
            passing.add_metric([name], passing_count)
        checks = GaugeMetricFamily("platform_monitor_checks", "Checks by state.", labels=["service", "state"])
        by_state: dict[tuple[str, str], int] = defaultdict(int)
        for service, status, n in counts:
            by_state[(label(service), status)] += n
        for service in sorted({service for service, _ in by_state}):
            for state in State.values:
                checks.add_metric([service, state], by_state.get((service, state), 0))
        yield from (nodes, passing, healthy, checks)
