"""Fixtures of the router tests: callers with router scopes, discovery nodes, stats windows."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from discovery_app import services as discovery
from platform_client.router_stats import Histogram


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def reader(api_client):
    return api_client("router:read")


@pytest.fixture
def writer(api_client):
    return api_client("router:read", "router:write")


@pytest.fixture
def reporter(api_client):
    return api_client("router:read", "router:report")


@pytest.fixture
def make_node(db, committed) -> Callable[..., Any]:
    """Register a discovery node (committed), e.g. ``make_node("orders", node_id="o-1")``."""
    counter = iter(range(1, 100_000))

    def make(service: str = "orders", **fields: Any):
        number = next(counter)
        values = {
            "node_id": f"{service}-{number}",
            "service": service,
            "version": "1.0",
            "address": f"10.0.0.{number % 250 + 1}",
            "port": 8000 + number,
            "now": time.time(),
            **fields,
        }
        with committed():
            node, _ = discovery.node_register(**values)
        return node

    return make


def window(
    service: str = "orders",
    node: str = "orders-1",
    *,
    start: float | None = None,
    requests: int = 100,
    successes: int | None = None,
    latency_ms: float = 20.0,
    consecutive_5xx: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """One stats window in the ingest shape (every call at ``latency_ms``)."""
    successes = requests if successes is None else successes
    histogram = Histogram()
    if requests:
        histogram.add(latency_ms, requests)
    return {
        "service": service,
        "node": node,
        "endpoint": "",
        # The window running now: an evaluation up to 20 s later (the lookback) still reads it,
        # even when a 10 s boundary passes between the report and the evaluation.
        "start": int(time.time() // 10 * 10) if start is None else start,
        "seconds": 10,
        "requests": requests,
        "successes": successes,
        "errors": requests - successes,
        "timeouts": 0,
        "dropped": 0,
        "consecutive_5xx": consecutive_5xx,
        "latency": histogram.to_wire(),
        **extra,
    }


def allow_only(service: str) -> None:
    """Bind the newest account to a role whose only rule allows ``router:<service>``."""
    from auth_app import services as auth_services
    from auth_app.models import Account

    role = auth_services.role_create(name=f"only-{service}-{Account.objects.count()}")
    auth_services.rule_create(role=role, resource=f"router:{service}", action="*")
    auth_services.binding_create(role=role, account=Account.objects.order_by("-id").first())
