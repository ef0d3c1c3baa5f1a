"""The db dashboard in a real browser: databases, a table's records through the query grammar,
and its changes arriving live (the platform under uvicorn, for the events websocket)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from platform_client.db import Databases, Table
from platform_client.session import PlatformSession
from tests.servers import OPERATOR, OPERATOR_PASSWORD

pytestmark = [pytest.mark.e2e]


def test_db_dashboard__browse_query_and_watch_changes_live(browser, request, screenshot_dir):
    platform = request.getfixturevalue("asgi_platform")
    wait = WebDriverWait(browser, 30)
    base = platform.url
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    with PlatformSession(base, platform.client_id, platform.client_secret) as session:
        # given: a database with records, and the operator logged in
        Databases(session).create("shop")
        orders = Table("orders", database="shop", session=session)
        orders.create({"total": 5}, id="o-1", metadata={"env": "prod"})
        orders.create({"total": 50}, id="o-2", metadata={"env": "dev"})
        browser.get(f"{base}/ui/login/")
        wait.until(ec.visibility_of_element_located((By.ID, "id_username")))
        browser.find_element(By.ID, "id_username").send_keys(OPERATOR)
        browser.find_element(By.ID, "id_password").send_keys(OPERATOR_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        wait.until(lambda driver: "/login/" not in driver.current_url)
        # when: it opens the databases, then the table
        browser.get(f"{base}/ui/db/")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#databases tr[data-database=shop]")))
        browser.find_element(By.LINK_TEXT, "shop").click()
        wait.until(ec.presence_of_element_located((By.ID, "tables")))
        browser.find_element(By.LINK_TEXT, "orders").click()
        wait.until(ec.presence_of_element_located((By.ID, "records")))
        # then: every record is listed
        listed = [
            row.get_attribute("data-id")
            for row in browser.find_elements(By.CSS_SELECTOR, "#records tr[data-id]")
        ]
        assert sorted(listed) == ["o-1", "o-2"]
        # when: it queries with the grammar
        box = browser.find_element(By.ID, "query")
        box.clear()
        box.send_keys("data->total=gt.10")
        browser.find_element(By.CSS_SELECTOR, "#query-form button[type=submit]").click()
        wait.until(ec.url_contains("q=data"))
        listed = [
            row.get_attribute("data-id")
            for row in browser.find_elements(By.CSS_SELECTOR, "#records tr[data-id]")
        ]
        assert listed == ["o-2"]
        # when: records change while the page is open
        wait.until(ec.text_to_be_present_in_element((By.ID, "changes-state"), "live"))
        orders.create({"total": 7}, id="o-3", metadata={"env": "prod"})
        orders.update("o-1", {"total": 6}, metadata={"env": "prod"}, expected_version=1)
        # then: they appear among the live changes
        wait.until(ec.text_to_be_present_in_element((By.ID, "change-rows"), "o-3"))
        wait.until(ec.text_to_be_present_in_element((By.ID, "change-rows"), "updated"))
        # and: a bulk call's batch event shows each of its records
        orders.bulk(create=[{"id": "o-4", "data": {}}, {"id": "o-5", "data": {}}], delete=["o-2"])
        wait.until(ec.text_to_be_present_in_element((By.ID, "change-rows"), "o-5"))
        changes = browser.find_element(By.ID, "change-rows").text
        assert "o-4" in changes and "deleted o-2" in changes
        browser.save_screenshot(str(screenshot_dir / "db-dashboard.png"))
        browser.save_screenshot(str(screenshot_dir / "db-dashboard.png"))
        # and: a query the grammar refuses is shown, naming the term
        box = browser.find_element(By.ID, "query")
        box.clear()
        box.send_keys("meta.env=almost.prod")
        browser.find_element(By.CSS_SELECTOR, "#query-form button[type=submit]").click()
        wait.until(ec.presence_of_element_located((By.ID, "query-error")))
        assert "almost.prod" in browser.find_element(By.ID, "query-error").text
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get("about:blank")
