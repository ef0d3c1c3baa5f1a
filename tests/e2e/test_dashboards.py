"""The dashboards shell in a real browser: login, the overview, service pages, logout."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SERVICES = ("auth", "config", "discovery", "events", "monitor", "router", "trace", "db")
CHECKS = ("database", "cache", "channel_layer", "broker")
STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"  # the ``staff_user`` fixture's account


def path_of_url(href: str) -> str:
    return urlsplit(href).path


def path_of(driver) -> str:
    return path_of_url(driver.current_url)


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def computed_style(driver, selector: str, prop: str) -> str:
    """The computed CSS ``prop`` of the first element matching ``selector`` (as ``rgb(...)`` for colours)."""
    script = "return getComputedStyle(document.querySelector(arguments[0])).getPropertyValue(arguments[1])"
    return driver.execute_script(script, selector, prop)


def wait_for_overview(wait) -> None:
    # The URL first: reading the login page's heading while it navigates away is a Chrome race.
    wait.until(ec.url_matches(r"/ui/$"))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Platform overview"))


def wait_for_login_page(wait) -> None:
    wait.until(ec.url_contains("/ui/login/"))
    wait.until(ec.visibility_of_element_located((By.ID, "id_username")))


def test_dashboard__staff_logs_in__sees_overview(page, wait, login, staff_user):
    # Given a staff account
    # When the operator logs in through the form
    login(STAFF_NAME, STAFF_PASSWORD)

    # Then the overview is shown at /ui/
    wait_for_overview(wait)
    assert path_of(page) == "/ui/"
    assert page.find_element(By.CSS_SELECTOR, ".topbar .who").text == STAFF_NAME

    # And all eight services are listed, each linking to its page
    rows = page.find_elements(By.CSS_SELECTOR, "table.grid tbody tr")
    links = [row.find_element(By.CSS_SELECTOR, "td a") for row in rows]
    assert [link.text for link in links] == list(SERVICES)
    assert [path_of_url(link.get_attribute("href")) for link in links] == [f"/ui/{s}/" for s in SERVICES]
    apis = [row.find_element(By.TAG_NAME, "code").text for row in rows]
    assert apis == [f"/api/v1/{s}/" for s in SERVICES]

    # And every readiness check is reachable
    checks = page.find_elements(By.CSS_SELECTOR, "ul.checks li")
    assert [item.text for item in checks] == [f"{name}: reachable" for name in CHECKS]
    assert all(item.get_attribute("class") == "ok" for item in checks)


def test_login__wrong_password__stays_on_login_page_with_error(page, wait, login, staff_user):
    # Given a staff account
    # When someone submits its user name with a wrong password
    login(STAFF_NAME, "not-the-password")

    # Then the login page is shown again, with the error message
    error = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "p.error[role=alert]")))
    assert "correct username and password for a staff account" in error.text
    assert path_of(page) == "/ui/login/"
    assert heading(page) == "Log in"

    # And nobody is logged in: no navigation, no logout button
    assert page.find_elements(By.CSS_SELECTOR, ".topbar nav") == []
    assert page.find_elements(By.CSS_SELECTOR, "form.logout") == []


def test_navigation__staff_clicks_config__sees_config_service_page(page, wait, login, staff_user):
    # Given a logged-in staff user on the overview
    login(STAFF_NAME, STAFF_PASSWORD)
    wait_for_overview(wait)
    nav = page.find_element(By.CSS_SELECTOR, "nav[aria-label=Services]")
    assert [a.text for a in nav.find_elements(By.TAG_NAME, "a")][: len(SERVICES)] == list(SERVICES)

    # When they click "config" in the navigation bar
    nav.find_element(By.LINK_TEXT, "config").click()

    # Then they land on /ui/config/, showing the service's API root
    wait.until(ec.url_matches(r"/ui/config/$"))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "config"))
    assert heading(page) == "config"
    facts = page.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "/api/v1/config/" in facts
    assert "config:read" in facts
    assert "config:write" in facts

    # And the navigation marks "config" as the current page
    current = page.find_elements(By.CSS_SELECTOR, "nav[aria-label=Services] a[aria-current=page]")
    assert [a.text for a in current] == ["config"]


def test_dashboard__non_staff_user__is_sent_to_login(page, wait, login, url, django_user_model):
    # Given an active account that is not staff
    django_user_model.objects.create_user("visitor", password="pw-visitor-1", is_staff=False)

    # When it logs in through the form (which would lead to /ui/)
    login("visitor", "pw-visitor-1")

    # Then the login is refused with a reason, and no session is opened
    error = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "p.error[role=alert]")))
    assert "staff account" in error.text
    assert path_of(page) == "/ui/login/"
    assert not page.find_elements(By.CSS_SELECTOR, "form.logout")
    assert heading(page) == "Log in"
    assert "Platform overview" not in page.page_source

    # And asking for /ui/ directly lands on the login page as well
    page.get(url("/ui/"))
    wait_for_login_page(wait)
    assert path_of(page) == "/ui/login/"
    assert "Platform overview" not in page.page_source


def test_dashboard__anonymous_visitor__is_sent_to_login(page, wait, url):
    # Given nobody is logged in
    # When a visitor opens /ui/config/
    page.get(url("/ui/config/"))

    # Then they are on the login page, which will send them back to /ui/config/ afterwards
    wait_for_login_page(wait)
    assert path_of(page) == "/ui/login/"
    next_field = page.find_element(By.CSS_SELECTOR, "main form input[name=next]")
    assert next_field.get_attribute("value") == "/ui/config/"


def test_logout__staff_logs_out__must_log_in_again(page, wait, login, url, staff_user):
    # Given a logged-in staff user on the overview
    login(STAFF_NAME, STAFF_PASSWORD)
    wait_for_overview(wait)
    button = page.find_element(By.CSS_SELECTOR, "form.logout button[type=submit]")
    assert button.text == "Log out"

    # When they click "Log out"
    button.click()

    # Then they are back on the login page, logged out
    wait.until(ec.staleness_of(button))
    wait_for_login_page(wait)
    assert path_of(page) == "/ui/login/"
    assert page.find_elements(By.CSS_SELECTOR, "form.logout") == []

    # And /ui/ asks for a login again
    page.get(url("/ui/"))
    wait_for_login_page(wait)
    assert path_of(page) == "/ui/login/"
    assert "Platform overview" not in page.page_source


def test_dashboard__screenshot__renders_with_stylesheet(page, wait, login, screenshot_dir, staff_user):
    # Given a logged-in staff user on the overview
    login(STAFF_NAME, STAFF_PASSWORD)
    wait_for_overview(wait)

    # When the stylesheet has been applied (the top bar turns dark navy)
    wait.until(lambda driver: computed_style(driver, ".topbar", "background-color") == "rgb(19, 26, 42)")

    # Then the page is laid out by platform.css: white cards, green readiness checks, a grid table
    assert computed_style(page, "section.card", "background-color") == "rgb(255, 255, 255)"
    assert computed_style(page, "ul.checks li.ok", "color") == "rgb(29, 122, 70)"
    assert computed_style(page, "table.grid", "border-collapse") == "collapse"

    # And a screenshot of it is saved to var/e2e/overview.png
    target = screenshot_dir / "overview.png"
    target.unlink(missing_ok=True)
    assert page.save_screenshot(str(target))
    assert target.stat().st_size > 10_000
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
