"""``platform demo`` seen in a real browser: while the fleet runs, the discovery, monitor, events,
config and router dashboards show its services; afterwards the trace view finds the slow path by
duration and opens it on the ``customers.lookup`` span."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from platform_client.session import PlatformSession
from tests.e2e.conftest import operator_login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def test_demo__dashboards_show_the_fleet_and_the_slow_path(browser, request, screenshot_dir):
    pytest.importorskip("opentelemetry.sdk")
    platform = request.getfixturevalue("asgi_platform")
    wait = WebDriverWait(browser, 60)
    base = platform.url
    env = {
        **os.environ,
        "PLATFORM_URL": base,
        "PLATFORM_CLIENT_ID": platform.client_id,
        "PLATFORM_CLIENT_SECRET": platform.client_secret,
    }
    fleet = subprocess.Popen(
        [sys.executable, "-m", "platform_client.cli._main", "demo", "--requests", "100", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        operator_login(browser, base, wait)
        for page, expected in (
            ("discovery", ("demo-gateway", "demo-customers", "demo-drivers")),
            ("monitor", ("demo-gateway", "demo-customers", "demo-drivers")),
            ("events", ("demo.started", "demo.dispatched")),
        ):
            browser.get(f"{base}/ui/{page}/")
            for text in expected:  # live pages: they fill in as the fleet starts and reports
                wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "main"), text))
            browser.save_screenshot(str(screenshot_dir / f"demo-{page}.png"))
        browser.get(f"{base}/ui/config/")
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "main"), "demo-customers"))
        # the router lists a service once it evaluated it (its periodic job; here asked for now)
        with PlatformSession(base, platform.client_id, platform.client_secret) as session:
            for name in ("demo-customers", "demo-drivers"):
                session.call("POST", f"/api/v1/router/services/{name}/evaluate/")
        browser.get(f"{base}/ui/router/")
        for name in ("demo-customers", "demo-drivers"):
            wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "main"), name))
        browser.save_screenshot(str(screenshot_dir / "demo-router.png"))
        assert fleet.wait(timeout=120) == 0
    finally:
        if fleet.poll() is None:
            fleet.kill()
    # the slow path: gateway traces over 300 ms are customer 7's (ten of the hundred calls)
    browser.get(f"{base}/ui/trace/?service=demo-gateway&min_ms=300")
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr .bar")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 10
    browser.save_screenshot(str(screenshot_dir / "demo-trace-slow.png"))
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#waterfall .wf-row")))
    names = [
        row.find_element(By.CSS_SELECTOR, ".wf-name").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#waterfall .wf-row")
    ]
    assert any("customers.lookup" in name for name in names)
    assert {"demo-gateway", "demo-customers", "demo-drivers"} <= {
        word for name in names for word in name.split()
    }
    browser.save_screenshot(str(screenshot_dir / "demo-trace-waterfall.png"))
