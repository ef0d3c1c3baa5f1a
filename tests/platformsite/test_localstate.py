"""Process-local state is registered in one place: tests reset it, /metrics reports it."""

from __future__ import annotations

import importlib
import re

import pytest

from platformsite import localstate

pytestmark = pytest.mark.django_db

EXPECTED = {
    "auth.tokens",
    "auth.policies",
    "auth.client_secrets",
    "auth.signing_keys",
    "config.resolved",
    "discovery.services",
    "discovery.node_meta",
    "events.webhook_filters",
    "platform.throttle_windows",
}


def test_registry__holds_every_per_process_cache():
    # Given the modules that keep process-local state (each registers when it is imported)
    for module in ("auth_app.keys", "auth_app.secrets", "config_app.selectors", "discovery_app.services"):
        importlib.import_module(module)

    # Then every cache is registered
    assert {cache.name for cache in localstate.caches()} >= EXPECTED


def test_reset_all__empties_every_cache_and_zeroes_its_counters(api_client):
    # Given caches warmed by real calls
    reader = api_client("config:read", "discovery:read")
    reader.get("/api/v1/config/namespaces/global/resolve")
    reader.get("/api/v1/discovery/services/")
    assert any(cache.size() for cache in localstate.caches())

    # When everything is reset
    localstate.reset_all()

    # Then no cache holds an entry or a count
    assert [(c.name, c.size(), c.hits, c.misses) for c in localstate.caches() if c.size() or c.hits] == []


def test_metrics__report_the_token_cache_entries_and_hits(api_client, client):
    # Given a caller whose token was validated, then used warm
    reader = api_client("monitor:read")
    for _ in range(3):
        assert reader.get("/api/v1/monitor/ping/").status_code == 200

    # When Prometheus scrapes
    text = client.get("/metrics").content.decode()

    # Then the token cache's entries and hits are there
    entries = re.search(r'platform_local_cache_entries\{cache="auth.tokens",pid="\d+"\} (\S+)', text)
    hits = re.search(r'platform_local_cache_hits_total\{cache="auth.tokens",pid="\d+"\} (\S+)', text)
    assert entries and float(entries.group(1)) >= 1
    assert hits and float(hits.group(1)) >= 2
