"""The monitor dashboard in a real browser: service cards by health, a service's nodes, checks,
flips, uptime and charts, live flips, and the fleet on the home page."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from monitor_app import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"
FAST = {"failures_before_critical": 1, "success_before_passing": 1}


def report(
    service: str, node: str, *checks: dict, stats: dict | None = None, now: float | None = None
) -> None:
    parsed = services.parse_report({"service": service, "node": node, "checks": list(checks), "stats": stats})
    services.reports_ingest(reports=[parsed], now=now or time.time())


def check(name: str, status: str, **fields) -> dict:
    return {"name": name, "status": status, **FAST, **fields}


def seed() -> None:
    start = time.time() - 300
    for i in range(6):
        stats = {
            "cpu": 20 + 10 * (i % 3),
            "memory": 2e8 + i * 1e7,
            "seconds": 10,
            "endpoints": [{"method": "GET /orders", "success": 100 + 20 * i, "errors": i}],
        }
        report(
            "orders",
            "orders-1",
            check("db", "passing", output="select 1: 2 ms"),
            stats=stats,
            now=start + i * 10,
        )
    report("orders", "orders-2", check("db", "passing"), check("disk", "passing"), now=start)
    report("orders", "orders-2", check("disk", "critical", output="/var 97% full"), now=start + 60)
    report("billing", "billing-1", check("db", "critical", output="connection refused"))
    report("search", "search-1", check("index", "passing"))
    services.job_create(service="orders", name="nightly-backup", fields={"interval": 86400, "ttl": 3600})


def test_monitor_dashboard__cards_service_page_and_live_flip(
    page, wait, login, url, staff_user, screenshot_dir
):
    seed()
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    # the home page: the fleet at a glance
    fleet = wait.until(ec.visibility_of_element_located((By.ID, "fleet")))
    assert "billing" in fleet.text and "orders" in fleet.text
    page.save_screenshot(str(screenshot_dir / "monitor-home.png"))
    # the monitor's cards, coloured by health
    page.get(url("/ui/monitor/"))
    card = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "a[data-service=billing]")))
    assert card.get_attribute("data-health") == "degraded"
    assert (
        page.find_element(By.CSS_SELECTOR, "a[data-service=search]").get_attribute("data-health") == "healthy"
    )
    page.save_screenshot(str(screenshot_dir / "monitor-fleet.png"))
    # a flip while the page is open shows without a reload (websocket, or polling where the server
    # has none): search goes degraded
    report("search", "search-1", check("index", "critical", output="index missing"))
    wait.until(
        ec.text_to_be_present_in_element_attribute(
            (By.CSS_SELECTOR, "a[data-service=search]"), "data-health", "degraded"
        )
    )
    # the service page: nodes with checks (last output, age, thresholds), jobs, uptime, charts, flips
    page.get(url("/ui/monitor/orders/"))
    node = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "section[data-node=orders-2]")))
    assert "/var 97% full" in node.text and "critical" in node.text
    assert page.find_element(By.CSS_SELECTOR, "#jobs tr[data-check=nightly-backup]")
    assert page.find_element(By.CSS_SELECTOR, "svg[aria-label='CPU %']")
    assert page.find_element(By.CSS_SELECTOR, "#uptime .uptime-month")
    assert "passing → critical" in page.find_element(By.ID, "flips").text
    size = page.get_window_size()
    page.set_window_size(1280, 2200)  # the whole page in one picture
    try:
        page.save_screenshot(str(screenshot_dir / "monitor-service.png"))
    finally:
        page.set_window_size(size["width"], size["height"])
