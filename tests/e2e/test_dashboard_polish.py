"""The dashboards' shared touches in a real browser: the config page's environment pickers, times
written by JavaScript in the one format, and no request of a page that answers 404."""

from __future__ import annotations

import json
import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from config_app import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"  # the ``staff_user`` fixture's account
UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def logged_in(wait) -> None:
    wait.until(ec.url_matches(r"/ui/$"))
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Platform overview"))


def resolved(page) -> dict:
    return json.loads(page.find_element(By.ID, "resolved").text or "null")


def test_config_page__another_environment_is_shown_from_its_labelled_field(
    page, wait, login, url, staff_user
):
    # Given a namespace with a default and a production layer
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"timeout": 5}, author="service:seed")
    services.layer_set(namespace="payments", env="production", data={"timeout": 9}, author="service:seed")
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)
    page.get(url("/ui/config/payments/"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "resolved-env"), "production"))

    # When the operator types an environment with no layer into "Another environment" and clicks Show
    field = page.find_element(By.CSS_SELECTOR, "label[for=env-other]")
    assert field.text == "Another environment"
    page.find_element(By.ID, "env-other").send_keys("staging")
    page.find_element(By.ID, "env-other-show").click()

    # Then that environment is resolved (from the layers it inherits) and selected in both lists
    wait.until(ec.url_contains("?env=staging"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "resolved-env"), "staging"))
    wait.until(lambda driver: resolved(driver) == {"timeout": 5})
    assert Select(page.find_element(By.ID, "env-select")).first_selected_option.text == "staging"
    assert Select(page.find_element(By.ID, "layer-env")).first_selected_option.text == "staging"

    # And picking production from the list switches back to it
    Select(page.find_element(By.ID, "env-select")).select_by_visible_text("production")
    wait.until(ec.url_contains("?env=production"))
    wait.until(lambda driver: resolved(driver) == {"timeout": 9})


def test_config_history__times_are_utc_to_the_second_with_z(page, wait, login, url, staff_user):
    # Given a layer with two revisions
    services.namespace_create(name="payments")
    for timeout in (5, 6):
        services.layer_set(namespace="payments", env="default", data={"t": timeout}, author="service:seed")
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)

    # When the operator opens the namespace
    page.get(url("/ui/config/payments/"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#history tr[data-revision='2']")))

    # Then the history's "When" column reads like every other time on the dashboards
    rows = page.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [bool(UTC_SECONDS.fullmatch(row.find_elements(By.TAG_NAME, "td")[1].text)) for row in rows] == [
        True,
        True,
    ]


def test_dashboards__no_request_answers_404(page, wait, login, url, staff_user):
    # Given a logged-in staff user
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)

    # When every service's page is opened (each asks for its stylesheet, scripts and the icon)
    rows = page.find_elements(By.CSS_SELECTOR, "#services tbody tr")
    paths = ["/ui/", *(f"/ui/{row.get_attribute('data-service')}/" for row in rows)]
    page.get_log("browser")  # the shared browser's log so far belongs to earlier tests
    failures = []
    for path in paths:
        page.get(url(path))
        wait.until(ec.presence_of_element_located((By.TAG_NAME, "footer")))
        failures += [entry["message"] for entry in page.get_log("browser") if " 404 " in entry["message"]]

    # Then the browser logged no 404 (the favicon included)
    assert failures == []


def test_config_page__a_layer_not_written_yet__no_404_and_plain_words(page, wait, login, url, staff_user):
    # Given a namespace with no layer written, and one with only a default layer
    services.namespace_create(name="blank")
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"timeout": 5}, author="service:seed")
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)
    page.get_log("browser")  # the shared browser's log so far belongs to earlier tests

    # When the namespace without layers is opened
    page.get(url("/ui/config/blank/"))
    wait.until(ec.visibility_of_element_located((By.ID, "resolved-none")))
    # Then it says so plainly, instead of "Revision 0 built from global/default@0 blank/default@0"
    assert not page.find_element(By.ID, "resolved-from").is_displayed()
    assert "no layer that default reads is written yet" in page.find_element(By.ID, "resolved-none").text
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#history tbody"), "No revision yet"))

    # When a written namespace is shown for an environment with no layer of its own
    page.get(url("/ui/config/payments/?env=staging"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "resolved-layers"), "payments/default@1"))
    assert "@0" not in page.find_element(By.ID, "resolved-layers").text
    assert not page.find_element(By.ID, "resolved-none").is_displayed()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#history tbody"), "No revision yet"))
    assert page.find_element(By.ID, "layer-revision").text == "0"

    # Then neither page asked for the missing layer (the browser logs a 404 as an error)
    assert [e["message"] for e in page.get_log("browser") if " 404 " in e["message"]] == []

    # And the staging layer, once saved from the editor, is read back as written
    page.execute_script(
        "arguments[0].value = arguments[1];", page.find_element(By.ID, "editor"), '{"timeout": 7}'
    )
    page.find_element(By.ID, "save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-ok"), "Saved revision 1"))
    wait.until(ec.text_to_be_present_in_element((By.ID, "resolved-layers"), "payments/staging@1"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#history tbody tr[data-revision='1']")))
