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

HTTP_REQUESTS = Counter(
    "platform_http_requests_total",
    "HTTP requests answered, by method, route and status code.",
    ["method", "route", "status"],
)
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
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
