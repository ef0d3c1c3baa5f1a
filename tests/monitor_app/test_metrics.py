"""The fleet's gauges in /metrics, with bounded label sets."""

from __future__ import annotations

import pytest

from tests.monitor_app.conftest import result

pytestmark = pytest.mark.django_db
FAST = {"failures_before_critical": 1, "success_before_passing": 1}


def lines(client, prefix: str) -> set[str]:
    text = client.get("/metrics").content.decode()
    return {line for line in text.splitlines() if line.startswith(prefix)}


def test_metrics__per_service_nodes_passing_health_and_checks_by_state(client, report):
    report("orders", "n1", result("db", "passing", **FAST))
    report("orders", "n2", result("db", "critical", **FAST))

    assert lines(client, "platform_monitor_service_nodes") >= {
        'platform_monitor_service_nodes{service="orders"} 2.0',
        'platform_monitor_service_nodes_passing{service="orders"} 1.0',
    }
    assert 'platform_monitor_service_healthy{service="orders"} 1.0' in lines(
        client, "platform_monitor_service_healthy"
    )
    assert lines(client, "platform_monitor_checks{") == {
        'platform_monitor_checks{service="orders",state="passing"} 1.0',
        'platform_monitor_checks{service="orders",state="critical"} 1.0',
        'platform_monitor_checks{service="orders",state="warning"} 0.0',
        'platform_monitor_checks{service="orders",state="unknown"} 0.0',
    }


def test_metrics__services_past_the_limit__summed_as_other(client, report, settings):
    settings.MONITOR_METRICS_MAX_SERVICES = 2
    for name in ("a", "b", "c", "d"):
        report(name, "n1", result("db", "passing"))

    nodes = lines(client, "platform_monitor_service_nodes{")
    assert nodes == {
        'platform_monitor_service_nodes{service="a"} 1.0',
        'platform_monitor_service_nodes{service="b"} 1.0',
        'platform_monitor_service_nodes{service="_other"} 2.0',
    }
