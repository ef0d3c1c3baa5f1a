"""The discovery dashboard in a real browser: services, a service's nodes and endpoints, live changes."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from discovery_app import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"


def register(node_id: str, service: str = "orders", **fields) -> None:
    services.node_register(node_id=node_id, service=service, address="10.0.0.1", port=8080, **fields)


def test_discovery_dashboard__lists_services_and_follows_changes(page, wait, login, url, staff_user):
    # given a registered service and a logged-in operator
    register("orders-1", version="1.0")
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    # when the operator opens the discovery page
    page.get(url("/ui/discovery/"))
    row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-service=orders]")))
    assert row.find_element(By.CSS_SELECTOR, "td.nodes").text == "1"
    # and a service joins while the page is open
    register("billing-1", service="billing")
    # then it appears without a reload (websocket, or polling where the server has none)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-service=billing]")))


def test_discovery_dashboard__service_detail_shows_nodes_endpoints_and_degraded_banner(
    page, wait, login, url, staff_user
):
    # given a service with an endpoint
    register(
        "orders-1",
        metadata={"zone": "eu"},
        endpoints=[
            {"name": "Orders.Create", "request": {"sku": {"type": "string"}}, "response": {"id": "int"}}
        ],
    )
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    # when the operator opens it
    page.get(url("/ui/discovery/orders/"))
    node = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-node=orders-1]")))
    # then the node, its labels, heartbeat age and the endpoint's request tree are shown
    assert "10.0.0.1:8080" in node.text and "zone=eu" in node.text and node.text.endswith(" s")
    endpoint = page.find_element(By.CSS_SELECTOR, "details[data-endpoint='Orders.Create']")
    assert "sku" in endpoint.text and "string" in endpoint.text
    # and the heartbeat's age keeps counting between refreshes (it stood at "1 s" for minutes)
    first = int(node.find_element(By.CSS_SELECTOR, "[data-age]").text.removesuffix(" s"))  # "2 s"
    wait.until(
        lambda _: (
            int(
                page.find_element(By.CSS_SELECTOR, "tr[data-node=orders-1] [data-age]").text.removesuffix(
                    " s"
                )
            )
            >= first + 2
        )
    )
    # and when a second node joins, it shows up live
    register("orders-2")
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-node=orders-2]")))
    # and when the registry goes degraded, the banner appears
    from django.core.cache import cache

    from discovery_app import selectors

    cache.set(
        selectors.DEGRADED_KEY,
        {"held": 6, "total": 10, "share": 0.6, "since": 0, "since_iso": "2026-01-01T00:00:00Z"},
        timeout=None,
    )
    register("orders-3")  # any change makes the page refresh its live part
    banner = wait.until(ec.visibility_of_element_located((By.ID, "degraded-banner")))
    assert "6 of 10" in banner.text


def test_discovery_dashboard__over_asgi__updates_live_through_the_websocket(browser, tmp_path):
    """Against a real ASGI server the page follows changes over /ws/discovery/ (not by polling)."""
    from selenium.webdriver.support.ui import WebDriverWait

    from platform_client.discovery import Registration
    from platform_client.session import PlatformSession
    from tests.servers import OPERATOR_PASSWORD, asgi_platform

    with (
        asgi_platform(tmp_path) as (base, client_id, secret),
        PlatformSession(base, client_id, secret) as session,
    ):
        wait = WebDriverWait(browser, 30)
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        # given an operator logged in to that platform, on the discovery page
        browser.get(f"{base}/ui/login/")
        wait.until(ec.visibility_of_element_located((By.ID, "id_username")))
        browser.find_element(By.ID, "id_username").send_keys("admin")
        browser.find_element(By.ID, "id_password").send_keys(OPERATOR_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait.until(ec.url_matches(r"/ui/$"))
        browser.get(f"{base}/ui/discovery/")
        # then the page says it is live (websocket subscribed)
        wait.until(ec.text_to_be_present_in_element((By.ID, "live-state"), "live"))
        # and when a service registers through the SDK, it appears
        with Registration(session, "payments", "3.1", "10.9.9.9", 9000, interval=30):
            row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-service=payments]")))
            assert "3.1" in row.text
        # and when it deregisters, it goes
        wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, "tr[data-service=payments]")))
        assert browser.find_element(By.ID, "live-state").text == "live"
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        browser.get("about:blank")
