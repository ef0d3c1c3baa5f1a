"""The router dashboard pages (server side); the browser test is tests/e2e/test_router_dashboard.py."""

from __future__ import annotations

import time

import pytest

from router_app import services
from router_app.models import Label, Policy, Rule
from tests.router_app.conftest import window

pytestmark = pytest.mark.django_db

PAGE = "/ui/router/orders/"


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def ejected_fleet(make_node, committed):
    for number in range(5):
        make_node(node_id=f"orders-{number}")
    services.stats_ingest(
        caller="checkout",
        windows=[window(node="orders-0", requests=10, successes=0, consecutive_5xx=10)],
        now=time.time(),
    )
    with committed():
        services.service_evaluate(service="orders", now=time.time())


def rule_form(**overrides):
    return {"action": "rule_create", "version": "2.0", "key": "beta", "value": "true", "weight": "20",
            "priority": "0", **overrides}  # fmt: skip


def test_index__lists_services_with_ejections(operator, ejected_fleet):
    page = operator.get("/ui/router/").content.decode()

    assert 'data-service="orders"' in page and 'class="has-ejected"' in page


def test_detail__nodes_weights_reasons_and_history(operator, ejected_fleet):
    page = operator.get(PAGE).content.decode()

    assert 'data-node="orders-0" class="ejected"' in page
    assert "ejected (consecutive_5xx, ejection 1)" in page
    assert 'data-node="orders-1" class="active"' in page
    assert 'class="eject"' in page and "consecutive_5xx" in page


def test_rule__created_edited_deleted_from_the_page(operator, make_node):
    make_node(node_id="orders-1")

    operator.post(PAGE, rule_form())
    rule = Rule.objects.get()
    operator.post(PAGE, {**rule_form(weight="35"), "action": "rule_update", "id": rule.pk})
    assert Rule.objects.get().weight == 35
    operator.post(PAGE, {"action": "rule_delete", "id": rule.pk})

    assert not Rule.objects.exists()


def test_rule__a_conflict_is_shown_and_nothing_saved(operator, make_node):
    make_node(node_id="orders-1")
    operator.post(PAGE, rule_form())

    response = operator.post(PAGE, rule_form(key="country", value="uk"), follow=True)

    assert "same priority 0" in response.content.decode()
    assert Rule.objects.count() == 1


def test_label__bad_weight_is_refused_with_the_field(operator, make_node):
    make_node(node_id="orders-1")
    response = operator.post(PAGE, {**rule_form(weight="120"), "action": "label_create"}, follow=True)

    assert "Not saved: weight" in response.content.decode()
    assert not Label.objects.exists()


def test_dry_run__toggled_from_the_page(operator, make_node):
    make_node(node_id="orders-1")

    operator.post(PAGE, {"action": "enforce", "enforce": "false"})

    assert Policy.objects.get(service="orders").enforce is False
    assert "dry run" in operator.get(PAGE).content.decode()


def test_dry_run__a_switch_value_not_true_or_false__is_refused_and_nothing_changes(operator, make_node):
    # "maybe" (anything but "true") switched decisions to a dry run
    make_node(node_id="orders-1")
    operator.post(PAGE, {"action": "enforce", "enforce": "true"})

    response = operator.post(PAGE, {"action": "enforce", "enforce": "maybe"}, follow=True)

    assert "Not saved: enforce" in response.content.decode()
    assert Policy.objects.get(service="orders").enforce is True


def test_a_service_nobody_registered__has_no_page_and_the_switch_stores_nothing(operator, make_node):
    make_node(node_id="orders-1")

    assert operator.get("/ui/router/ordrs/").status_code == 404
    assert operator.post("/ui/router/ordrs/", {"action": "enforce", "enforce": "false"}).status_code == 404
    assert not Policy.objects.filter(service="ordrs").exists()


def test_definitions_of_another_service__cannot_be_changed_from_this_page(operator, make_node):
    rule = services.rule_save(service="billing", version="1", key="k", value="v", weight=5, priority=0)

    response = operator.post(PAGE, {"action": "rule_delete", "id": rule.pk})

    assert response.status_code == 404 and Rule.objects.exists()


def test_pages__need_staff(client):
    assert client.get("/ui/router/").status_code == 302
    assert client.post(PAGE, rule_form()).status_code == 302
    assert not Rule.objects.exists()


def test_detail__rate_limits_and_refused_calls(operator, make_node):
    make_node(node_id="orders-1")
    services.rate_limit_set(service="orders", caller="checkout", rate=5, burst=10)
    services.stats_ingest(
        caller="checkout", windows=[window(node="", requests=0, dropped=4)], now=time.time()
    )

    page = operator.get(PAGE).content.decode()

    assert 'data-caller="checkout"' in page and "5.0/s" in page
    assert "4 calls refused" in page


def test_detail__why_is_the_last_evaluation_s_even_when_no_weight_changed(operator, make_node, committed):
    # One node: its weight stays 100 whatever its success rate, so the routes are not rebuilt;
    # the reasons shown must still be the latest evaluation's, as the success rate beside them.
    make_node(node_id="orders-1")
    now = time.time()
    start = int(now // 10 * 10)  # one window: the second report replaces the first
    services.stats_ingest(caller="checkout", windows=[window(start=start, requests=10)], now=now)
    with committed():
        services.service_evaluate(service="orders", now=now)
    assert "success rate 100.0%" in operator.get(PAGE).content.decode()  # the routes are built
    services.stats_ingest(caller="checkout", windows=[window(start=start, requests=10, successes=4)], now=now)
    with committed():
        services.service_evaluate(service="orders", now=now + 1)

    page = operator.get(PAGE).content.decode()

    assert "40.00%" in page and "success rate 40.0%" in page
    assert "success rate 100.0%" not in page


def test_rule__the_delete_message_names_the_rule(operator, make_node):
    make_node(node_id="orders-1")
    operator.post(PAGE, rule_form())
    rule = Rule.objects.get()

    response = operator.post(PAGE, {"action": "rule_delete", "id": rule.pk}, follow=True)

    assert f"The rule #{rule.pk} is deleted." in response.content.decode()
