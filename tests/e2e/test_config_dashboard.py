"""The config dashboard in a real browser: namespaces, resolved view, editor, conflicts, history."""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from config_app import services
from config_app.models import Namespace, Revision

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STAFF_NAME, STAFF_PASSWORD = "operator", "pw-operator-1"


def logged_in(wait) -> None:
    """The login form's answer has arrived: the overview is shown."""
    wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Platform overview"))


def numbers(ns: str, env: str) -> list[int]:
    return list(
        Revision.objects.filter(namespace__name=ns, env=env)
        .order_by("number")
        .values_list("number", flat=True)
    )


def set_editor(page, text: str) -> None:
    editor = page.find_element(By.ID, "editor")
    page.execute_script("arguments[0].value = arguments[1];", editor, text)


def resolved(page) -> dict:
    return json.loads(page.find_element(By.ID, "resolved").text or "null")


def test_config_dashboard__edit_conflict_live_update_history_rollback(page, wait, login, url, staff_user):
    # Given a namespace with a default and a production layer
    services.namespace_create(name="payments", description="Payment service")
    services.layer_set(
        namespace="payments", env="default", data={"db": {"port": 5432}}, author="service:seed"
    )
    services.layer_set(
        namespace="payments", env="production", data={"db": {"host": "db1"}}, author="service:seed"
    )
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)

    # When the operator opens the config dashboard and the namespace
    page.get(url("/ui/config/"))
    row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "tr[data-namespace=payments]")))
    assert "production@1" in row.text
    row.find_element(By.TAG_NAME, "a").click()

    # Then the resolved production view and the production layer's editor are shown
    wait.until(ec.text_to_be_present_in_element((By.ID, "resolved-revision"), "2"))
    assert resolved(page) == {"db": {"port": 5432, "host": "db1"}}
    wait.until(
        lambda d: (
            json.loads(d.find_element(By.ID, "editor").get_attribute("value") or "null")
            == {"db": {"host": "db1"}}
        )
    )
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-status"), "live"))

    # When invalid JSON is saved, it is refused in the browser and nothing is written
    set_editor(page, '{"db": {"host": ')
    page.find_element(By.ID, "save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-error"), "Invalid JSON"))
    assert numbers("payments", "production") == [1]

    # When a schema-less valid change is saved, it becomes revision 2 and the resolved view follows
    set_editor(page, '{"db": {"host": "db2"}}')
    page.find_element(By.ID, "comment").send_keys("move to db2")
    page.find_element(By.ID, "save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-ok"), "Saved revision 2"))
    assert numbers("payments", "production") == [1, 2]
    wait.until(lambda d: resolved(d) == {"db": {"port": 5432, "host": "db2"}})

    # When the operator starts another edit and meanwhile someone else changes the layer
    set_editor(page, '{"db": {"host": "mine"}}')
    services.layer_set(
        namespace="payments", env="production", data={"db": {"host": "db3"}}, author="service:other"
    )

    # Then the resolved view updates live, and the operator's unsaved text is left alone
    wait.until(lambda d: resolved(d) == {"db": {"port": 5432, "host": "db3"}})
    wait.until(ec.text_to_be_present_in_element((By.ID, "live-notice"), "another change"))
    assert page.find_element(By.ID, "layer-revision").text == "2"

    # And saving that edit of the now stale revision 2 is a conflict that writes nothing
    page.find_element(By.ID, "save").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-error"), "Conflict"))
    assert numbers("payments", "production") == [1, 2, 3]
    assert Revision.objects.get(namespace__name="payments", env="production", number=3).data == {
        "db": {"host": "db3"}
    }

    # When the operator reloads the layer, views the diff of revision 3 and rolls back to revision 1
    page.find_element(By.ID, "reload-layer").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "layer-revision"), "3"))
    # (the history is rendered again for the new head: wait for that rendering, not an older one)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#history[data-layer-revision='3']")))
    page.find_element(By.CSS_SELECTOR, "#history tr[data-revision='3'] button.diff").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "diff"), '~ db/host: "db2" → "db3"'))
    page.find_element(By.CSS_SELECTOR, "#history tr[data-revision='1'] button.rollback").click()

    # Then revision 4 holds revision 1's data, shown in the history and the resolved view
    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-ok"), "as revision 4"))
    assert numbers("payments", "production") == [1, 2, 3, 4]
    assert Revision.objects.get(namespace__name="payments", env="production", number=4).data == {
        "db": {"host": "db1"}
    }
    wait.until(lambda d: resolved(d) == {"db": {"port": 5432, "host": "db1"}})
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#history tr[data-revision='4']")))


def test_config_dashboard__schema_violation__shows_failing_paths(page, wait, login, url, staff_user):
    schema = {"type": "object", "properties": {"port": {"type": "integer"}}}
    services.namespace_create(name="orders", json_schema=schema)
    services.layer_set(namespace="orders", env="default", data={"port": 1}, author="service:seed")
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)
    page.get(url("/ui/config/orders/"))
    wait.until(
        lambda d: json.loads(d.find_element(By.ID, "editor").get_attribute("value") or "null") == {"port": 1}
    )

    set_editor(page, '{"port": "high"}')
    page.find_element(By.ID, "save").click()

    wait.until(ec.text_to_be_present_in_element((By.ID, "editor-error"), "(port)"))
    assert numbers("orders", "default") == [1]


def test_config_dashboard__new_namespace_refused__names_the_field(page, wait, login, url, staff_user):
    login(STAFF_NAME, STAFF_PASSWORD)
    logged_in(wait)
    page.get(url("/ui/config/"))
    page.find_element(By.ID, "new-name").send_keys("qa-huge")
    description = page.find_element(By.ID, "new-description")
    page.execute_script("arguments[0].value = 'x'.repeat(100000);", description)
    page.find_element(By.CSS_SELECTOR, "#create-namespace button[type=submit]").click()
    # it said only "The request is not valid."
    wait.until(ec.text_to_be_present_in_element((By.ID, "create-error"), "description: "))
    assert not Namespace.objects.filter(name="qa-huge").exists()
