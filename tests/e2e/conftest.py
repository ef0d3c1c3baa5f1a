"""Fixtures for the browser tests: one headless Chromium per session, driven through Selenium.

The browser and its driver are found on the machine (``CHROMIUM_PATH`` / ``CHROMEDRIVER_PATH``,
then the Debian paths, then ``PATH``); Selenium Manager is never asked to download anything.
When either is missing every test asking for ``browser`` is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SKIP_REASON = "Chromium not installed: apt-get install chromium chromium-driver"
WAIT_SECONDS = 20

CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,900",
)


def _find_executable(env_var: str, default: str, *names: str) -> str | None:
    """The first of: ``$env_var``, ``default`` and ``names`` on PATH that is an executable file."""
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    if os.path.isfile(default) and os.access(default, os.X_OK):
        return default
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_path() -> str | None:
    return _find_executable("CHROMIUM_PATH", "/usr/bin/chromium", "chromium", "chromium-browser")


def chromedriver_path() -> str | None:
    return _find_executable("CHROMEDRIVER_PATH", "/usr/bin/chromedriver", "chromedriver")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """A headless Chromium WebDriver shared by the whole session, quit at the end."""
    binary, driver_path = chromium_path(), chromedriver_path()
    if binary is None or driver_path is None:
        pytest.skip(SKIP_REASON)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="e2e-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # An explicit driver path makes Selenium skip Selenium Manager (no download attempts).
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _forget_browser_state(driver) -> None:
    # delete_all_cookies() only reaches the current page's domain; the DevTools call clears all.
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.get("about:blank")
    driver.delete_all_cookies()


@pytest.fixture
def page(browser, live_server, transactional_db) -> Iterator:
    """The shared browser, with no cookies before and after the test (and a live server running)."""
    _forget_browser_state(browser)
    yield browser
    _forget_browser_state(browser)


@pytest.fixture
def wait(page):
    """An explicit wait on the shared browser.

    It retries through errors of elements caught mid-navigation (stale nodes, and Chrome's
    "Node with given id does not belong to the document"); a lasting one still ends in a timeout.
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        page, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
    )


@pytest.fixture
def url(live_server) -> Callable[[str], str]:
    """Absolute URL on the live server for a path."""
    return lambda path: f"{live_server.url}{path}"


@pytest.fixture
def login(page, wait, url) -> Callable[[str, str], None]:
    """Fill and submit the dashboards' login form (does not wait for the outcome)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    def submit(username: str, password: str) -> None:
        page.get(url("/ui/login/"))
        wait.until(ec.visibility_of_element_located((By.ID, "id_username")))
        page.find_element(By.ID, "id_username").send_keys(username)
        page.find_element(By.ID, "id_password").send_keys(password)
        page.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()

    return submit


@pytest.fixture
def screenshot_dir() -> Path:
    """``var/e2e/`` under the project root, created if needed (``var/`` is git-ignored)."""
    path = Path(__file__).resolve().parents[2] / "var" / "e2e"
    path.mkdir(parents=True, exist_ok=True)
    return path


def operator_login(browser, base: str, wait) -> None:
    """Log ``browser`` in to the platform at ``base`` as its operator (``tests.servers``), from a
    clean cookie jar, and wait until the login page is left."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from tests.servers import OPERATOR, OPERATOR_PASSWORD

    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get(f"{base}/ui/login/")
    wait.until(ec.visibility_of_element_located((By.ID, "id_username")))
    browser.find_element(By.ID, "id_username").send_keys(OPERATOR)
    browser.find_element(By.ID, "id_password").send_keys(OPERATOR_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait.until(lambda driver: "/login/" not in driver.current_url)
