"""The monitor dashboard, the home page's fleet, and the live websocket."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from monitor_app import services
from platformsite.asgi import application
from tests.monitor_app.conftest import NOW, result
from tests.sockets import greeted

FAST = {"failures_before_critical": 1, "success_before_passing": 1}


@pytest.mark.django_db
def test_dashboard__cards_coloured_by_health__service_page_with_nodes_and_checks(client, staff_user, report):
    report(
        "orders", "n1", result("db", "passing", **FAST), result("disk", "critical", output="98% full", **FAST)
    )
    report("billing", "b1", result("db", "passing", **FAST))
    job = services.job_create(service="orders", name="backup", fields={})
    client.force_login(staff_user)

    index = client.get("/ui/monitor/").content.decode()
    assert 'data-service="orders" data-health="degraded"' in index
    assert 'data-service="billing" data-health="healthy"' in index
    page = client.get("/ui/monitor/orders/").content.decode()
    assert 'data-node="n1"' in page and "98% full" in page
    assert f'data-check="{job.name}"' in page
    assert client.get("/ui/monitor/orders/?fragment=1").status_code == 200
    assert client.get("/ui/monitor/nope/").status_code == 404


@pytest.mark.django_db
def test_dashboard__needs_staff(client):
    assert client.get("/ui/monitor/").status_code == 302


@pytest.mark.django_db
def test_home_page__the_fleet_at_a_glance(client, staff_user, report):
    report("orders", "n1", result("db", "critical", **FAST))
    client.force_login(staff_user)

    page = client.get("/ui/").content.decode()

    assert 'id="fleet"' in page
    assert 'data-service="orders" data-health="degraded"' in page
    assert "unknown → critical" in page


@pytest.mark.django_db
def test_dashboard__charts_from_stats(client, staff_user, writer, committed):
    for i in range(3):
        body = {"service": "orders", "node": "n1", "stats": {"cpu": 10.0 + i, "seconds": 10, "endpoints": []}}
        with committed():
            assert writer.post("/api/v1/monitor/reports/", body, format="json").status_code == 200
    client.force_login(staff_user)

    page = client.get("/ui/monitor/orders/").content.decode()
    assert 'aria-label="CPU %"' in page


@pytest.mark.django_db(transaction=True)
def test_ws__subscribed__flips_arrive_live(issue_token):
    token = issue_token("monitor:read")

    def flip_orders():
        parsed = services.parse_report(
            {"service": "orders", "node": "n1", "checks": [result("db", "critical")]}
        )
        parsed_other = services.parse_report(
            {"service": "billing", "node": "b1", "checks": [result("db", "critical")]}
        )
        services.reports_ingest(reports=[parsed_other, parsed], now=NOW)

    async def run():
        ws = await greeted("/ws/monitor/", token)
        await ws.send_json_to({"type": "subscribe", "services": ["orders"]})
        subscribed = await ws.receive_json_from(timeout=5)
        await sync_to_async(flip_orders)()
        messages = []
        while not await ws.receive_nothing(timeout=0.5):
            messages.append(await ws.receive_json_from(timeout=5))
        await ws.disconnect()
        return subscribed, messages

    subscribed, messages = async_to_sync(run)()
    assert subscribed == {"type": "subscribed", "services": ["orders"]}
    assert {(m["flip"]["service"], m["flip"]["name"], m["flip"]["new"]) for m in messages} == {
        ("orders", "db", "critical"),
        ("orders", "", "degraded"),
    }


@pytest.mark.django_db(transaction=True)
def test_ws__bad_subscription__error_message(issue_token):
    token = issue_token("monitor:read")

    async def run():
        ws = WebsocketCommunicator(
            application, "/ws/monitor/", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        await ws.connect(timeout=5)
        await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"type": "subscribe", "services": "orders"})
        answer = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return answer

    assert async_to_sync(run)()["code"] == "invalid"


def test_chart__an_all_zero_series_says_its_max_is_zero():
    from monitor_app.web import chart

    drawn = chart(
        [{"at": "2026-01-01T00:00:00Z", "errors": 0.0}, {"at": "2026-01-01T00:01:00Z", "errors": 0.0}],
        "errors",
    )

    assert drawn is not None and drawn["max"] == 0 and drawn["last"] == 0
