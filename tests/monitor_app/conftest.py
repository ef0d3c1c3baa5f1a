"""Fixtures of the monitor tests: callers with monitor scopes, a report helper, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from monitor_app import services

NOW = 1_800_000_000.0  # a fixed "now" handed to the service functions


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block's on-commit callbacks (snapshots, alerts, live pushes) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def reader(api_client):
    return api_client("monitor:read")


@pytest.fixture
def writer(api_client):
    return api_client("monitor:read", "monitor:write")


@pytest.fixture
def report(db, committed) -> Callable[..., list[dict[str, Any]]]:
    """Report check results of one node through the service functions (committed)."""

    def send(service: str, node: str, *checks: dict[str, Any], now: float = NOW) -> list[dict[str, Any]]:
        parsed = services.parse_report({"service": service, "node": node, "checks": list(checks)})
        with committed():
            return services.reports_ingest(reports=[parsed], now=now)[0]["checks"]

    return send


def result(name: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "status": status, **fields}
