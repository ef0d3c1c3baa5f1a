"""Prometheus metrics of the platform process itself.

Under several worker processes ``platform serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before any
worker starts, so prometheus-client writes per-process files that ``/metrics`` aggregates.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from platformsite import localstate

HTTP_REQUESTS = Counter(
    "platform_http_requests_total",
    "HTTP requests answered, by method, route and status code.",
    ["method", "route", "status"],
)


class LocalStateCollector:
    """The registered process-local caches and threads (:mod:`platformsite.localstate`), read at
    scrape time: those of the process answering the scrape (label ``pid``)."""

    def collect(self):
        pid = str(os.getpid())
        entries = GaugeMetricFamily(
            "platform_local_cache_entries", "Entries in a process-local cache.", labels=["cache", "pid"]
        )
        hits = CounterMetricFamily(
            "platform_local_cache_hits", "Lookups a process-local cache answered.", labels=["cache", "pid"]
        )
        misses = CounterMetricFamily(
            "platform_local_cache_misses",
            "Lookups a process-local cache could not answer.",
            labels=["cache", "pid"],
        )
        for cache in localstate.caches():
            entries.add_metric([cache.name, pid], cache.size())
            hits.add_metric([cache.name, pid], cache.hits)
            misses.add_metric([cache.name, pid], cache.misses)
        threads = GaugeMetricFamily(
            "platform_local_thread_up", "1 while a background thread runs.", labels=["thread", "pid"]
        )
        for thread in localstate.threads():
            threads.add_metric([thread.name, pid], 1.0 if thread.alive() else 0.0)
        yield from (entries, hits, misses, threads)


HTTP_LATENCY = Histogram(
    "platform_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def exposition() -> tuple[bytes, str]:
    """The metrics of every process of this server, in Prometheus text format."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(LocalStateCollector())
        for collector in _SERVICE_COLLECTORS:
            registry.register(collector)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY) + generate_latest(_LOCAL_STATE), CONTENT_TYPE_LATEST


_LOCAL_STATE = CollectorRegistry(auto_describe=False)
_LOCAL_STATE.register(LocalStateCollector())
#: Collectors services register (read at scrape time, e.g. the monitor's fleet gauges).
_SERVICE_COLLECTORS: list = []


def register_collector(collector) -> None:
    """Add a service's collector to ``/metrics`` (read at each scrape, in whichever process
    answers it: it should read shared state, the database or the shared cache)."""
    _SERVICE_COLLECTORS.append(collector)
    _LOCAL_STATE.register(collector)
