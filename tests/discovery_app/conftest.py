"""Fixtures of the discovery tests: callers with discovery scopes and a node factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from discovery_app import services

NOW = 1_700_000_000.0  # a fixed "now" handed to the service functions


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block's on-commit callbacks (cache refresh, watchers, events) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def reader(api_client):
    return api_client("discovery:read")


@pytest.fixture
def writer(api_client):
    return api_client("discovery:read", "discovery:write")


@pytest.fixture
def make_node(db, committed) -> Callable[..., Any]:
    """Register a node through the service function (committed), with sensible defaults."""
    counter = iter(range(1, 100_000))

    def make(service: str = "orders", **fields: Any):
        number = next(counter)
        values = {
            "node_id": f"{service}-{number}",
            "service": service,
            "version": "1.0",
            "address": f"10.0.0.{number % 250 + 1}",
            "port": 8000 + number,
            "now": NOW,
            **fields,
        }
        with committed():
            node, _ = services.node_register(**values)
        return node

    return make
