"""The router dashboard in a real browser: nodes with weights and ejections, rules edited, dry run."""

from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from discovery_app import services as discovery
from router_app import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"


def ejected_fleet() -> None:
    for number in range(6):
        discovery.node_register(
            node_id=f"orders-{number}", service="orders", version="1.0" if number < 4 else "2.0",
            address="10.0.0.1", port=8000 + number,
        )  # fmt: skip
    now = time.time()
    start = int(now // 10 * 10 - 10)
    windows = [
        {"service": "orders", "node": f"orders-{n}", "start": start, "requests": 200, "successes": 200,
         "latency": {"buckets": {"31": 200}, "sum_ms": 200 * 20.0}}
        for n in range(1, 6)
    ]  # fmt: skip
    windows.append(
        {"service": "orders", "node": "orders-0", "start": start, "requests": 50, "successes": 20,
         "errors": 30, "consecutive_5xx": 12}
    )  # fmt: skip
    services.stats_ingest(caller="checkout", windows=windows, now=now)
    services.service_evaluate(service="orders", now=now)


def rule_keys(page) -> list[str]:
    return [
        field.get_attribute("value")
        for field in page.find_elements(By.CSS_SELECTOR, "#rules tbody input[name=key]")
    ]


def test_router_dashboard__nodes_rules_and_dry_run(page, wait, login, url, staff_user, screenshot_dir):
    # given a service whose first node was ejected, and a logged-in operator
    ejected_fleet()
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(ec.url_matches(r"/ui/$"))
    # when the operator opens the router's page, then the service is listed
    page.get(url("/ui/router/"))
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-service=orders] a"))).click()
    # and its page shows the ejected node with its reason, and the decision history
    node = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-node=orders-0]")))
    assert "ejected" in node.text and "consecutive_5xx" in node.text
    assert "eject" in page.find_element(By.ID, "history").text
    # when the operator adds a rule
    form = page.find_element(By.ID, "new-rule")
    for name, value in {"version": "2.0", "key": "beta", "value": "true", "weight": "20"}.items():
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[value=rule_create]").click()
    # then it is listed, and a conflicting one is refused with the reason
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#rules tr[data-rule]")))
    form = page.find_element(By.ID, "new-rule")
    for name, value in {"version": "2.0", "key": "country", "value": "uk", "weight": "10"}.items():
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[value=rule_create]").click()
    error = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#messages li.error")))
    assert "same priority" in error.text
    # and a label is added, then the page is screenshotted
    form = page.find_element(By.ID, "new-label")
    for name, value in {"version": "1.0", "key": "canary", "value": "yes", "weight": "50"}.items():
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[value=label_create]").click()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#labels tr[data-label]")))
    page.set_window_size(1280, 2200)
    page.save_screenshot(str(screenshot_dir / "router-service.png"))
    page.set_window_size(1280, 900)
    # when the operator switches to dry run, the ejected node is served again
    page.find_element(By.ID, "dry-run-toggle").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "enforce-form"), "recorded only"))
    node = page.find_element(By.CSS_SELECTOR, "tr[data-node=orders-0]")
    assert "ejected" not in node.find_element(By.CSS_SELECTOR, "td.weight").text
    # when a rule is added elsewhere (the API, the CLI), the page draws it without a reload
    services.rule_save(service="orders", version="1.0", key="zone", value="eu", weight=5, priority=9)
    wait.until(lambda d: "zone" in rule_keys(d))
    # but not while the operator types: the typed value stays, and the state says why
    field = page.find_element(By.CSS_SELECTOR, "#new-label input[name=key]")
    field.send_keys("typing")
    services.rule_save(service="orders", version="1.0", key="region", value="us", weight=5, priority=8)
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-state"), "paused while you edit"))
    assert page.find_element(By.CSS_SELECTOR, "#new-label input[name=key]").get_attribute("value") == "typing"
    assert "region" not in rule_keys(page)
    # and once the field is emptied and left, the page catches up
    field.clear()
    page.find_element(By.TAG_NAME, "h1").click()
    wait.until(lambda d: "region" in rule_keys(d))
