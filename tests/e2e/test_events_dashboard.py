"""The events dashboard in a real browser: chart, search, detail with related events, live tail."""

from __future__ import annotations

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from event_app.services import event_publish
from platform_client.event import publish_now
from platform_client.session import PlatformSession
from tests.e2e.conftest import operator_login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"


def test_events_dashboard__search_then_open_detail__shows_related(
    page, wait, login, url, staff_user, screenshot_dir
):
    # given
    root = event_publish(type="order.created", source="/shop", event_id="flow-7", subject="orders/7")
    event_publish(type="order.paid", source="/shop", root_id="flow-7", data={"total": 12})
    event_publish(type="user.created", source="/platform/auth")
    login(STAFF_NAME, STAFF_PASSWORD)
    wait.until(lambda driver: "/login/" not in driver.current_url)
    # when: the operator searches for order events
    page.get(url("/ui/events/"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#chart svg polyline")))
    # this minute's events are drawn as each line's dashed end, apart from the finished minutes
    assert len(page.find_elements(By.CSS_SELECTOR, "#chart svg polyline.current-minute")) == 3
    page.save_screenshot(str(screenshot_dir / "events-chart.png"))
    field = page.find_element(By.ID, "search-type")
    field.clear()
    field.send_keys("order.*")
    page.find_element(By.CSS_SELECTOR, "#search-form button[type=submit]").click()
    wait.until(ec.url_contains("type=order"))
    rows = page.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    # then
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == ["order.paid", "order.created"]
    legend = page.find_element(By.CSS_SELECTOR, "#chart .legend").text
    assert "order.created" in legend and "user.created" in legend
    # when: it opens the first event of the flow
    page.find_element(By.LINK_TEXT, str(root.pk)).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "event-type"), "order.created"))
    # then: the related event is listed and links back
    related = page.find_element(By.ID, "related")
    assert "order.paid" in related.text


def test_events_dashboard__live_tail__shows_new_events_matching_the_filter(browser, request):
    """Against the platform under uvicorn (websockets), logged in as its operator."""
    platform = request.getfixturevalue("asgi_platform")

    wait = WebDriverWait(browser, 30)
    base = platform.url
    # given: the operator is logged in and follows order.* events
    operator_login(browser, base, wait)
    browser.get(f"{base}/ui/events/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-status"), "live"))
    browser.find_element(By.ID, "tail-types").send_keys("order.*")
    browser.find_element(By.CSS_SELECTOR, "#tail-form button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-status"), "live"))
    # when: events are published
    with PlatformSession(base, platform.client_id, platform.client_secret) as session:
        publish_now(
            session,
            [
                {"specversion": "1.0", "id": "1", "source": "/shop", "type": "user.created"},
                {"specversion": "1.0", "id": "2", "source": "/shop", "type": "order.created", "subject": "o"},
            ],
        )
    # then: only the matching one appears in the tail
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-rows"), "order.created"))
    assert "user.created" not in browser.find_element(By.ID, "tail-rows").text
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get("about:blank")
    assert httpx.get(f"{base}/healthz").status_code == 200


def test_events_dashboard__live_tail__says_why_a_filter_is_not_followed(browser, request):
    """A filter the platform refuses (101 types) was shown as "live" for ever; one too long for a
    handshake retried every 2 s for ever."""
    platform = request.getfixturevalue("asgi_platform")
    wait = WebDriverWait(browser, 30)
    operator_login(browser, platform.url, wait)
    browser.get(f"{platform.url}/ui/events/")
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-status"), "live"))
    field = browser.find_element(By.ID, "tail-types")
    field.send_keys(",".join(f"t{i}" for i in range(101)))
    browser.find_element(By.CSS_SELECTOR, "#tail-form button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-status"), "at most 100"))
    assert browser.find_element(By.ID, "tail-status").text.startswith("not followed:")
    field.clear()
    browser.execute_script("arguments[0].value = 'a'.repeat(9000);", field)
    browser.find_element(By.CSS_SELECTOR, "#tail-form button[type=submit]").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "tail-status"), "longer than 8000 characters"))
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get("about:blank")
