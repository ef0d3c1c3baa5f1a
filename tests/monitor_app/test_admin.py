"""The monitor's admin screens: they load with rows, show them read only, and remove a check
through the service (its service's health is recomputed)."""

from __future__ import annotations

import pytest

from monitor_app.models import Check, ServiceHealth
from tests.monitor_app.conftest import result

pytestmark = pytest.mark.django_db

MODELS = ["servicehealth", "check", "nodestatus", "flip", "alert", "maintenance", "ping", "statsample"]


@pytest.mark.parametrize("model", MODELS)
def test_admin_changelist__with_rows__loads_and_adds_nothing(admin_client, report, model):
    report("orders", "n1", result("db", "passing", failures_before_critical=1))
    report("orders", "n1", result("db", "critical", failures_before_critical=1))
    assert admin_client.get(f"/admin/monitor_app/{model}/?q=orders").status_code == 200
    assert admin_client.get(f"/admin/monitor_app/{model}/add/").status_code == 403


def test_admin_check__read_only(admin_client, report):
    report("orders", "n1", result("db", "passing"))
    check = Check.objects.get()
    page = admin_client.get(f"/admin/monitor_app/check/{check.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_admin_check_delete__recomputes_the_service_health(admin_client, report):
    # given a service whose only critical check is a dead node's
    report("orders", "n1", result("db", "passing"))
    report("orders", "n2", result("db", "critical", failures_before_critical=1))
    assert ServiceHealth.objects.get(name="orders").passing == 1
    dead = Check.objects.get(node="n2")
    # when an operator deletes it in the admin
    response = admin_client.post(f"/admin/monitor_app/check/{dead.pk}/delete/", {"post": "yes"})
    # then it is gone and the service is judged on the node that is left
    assert response.status_code == 302
    assert list(Check.objects.values_list("node", flat=True)) == ["n1"]
    health = ServiceHealth.objects.get(name="orders")
    assert (health.nodes, health.passing, health.status) == (1, 1, "healthy")


def test_admin_checks_deleted_in_bulk__through_the_service(admin_client, report):
    report("orders", "n1", result("db", "passing"))
    report("orders", "n2", result("db", "critical", failures_before_critical=1))
    report("orders", "n3", result("db", "critical", failures_before_critical=1))
    dead = [str(pk) for pk in Check.objects.exclude(node="n1").values_list("pk", flat=True)]
    form = {"action": "delete_selected", "_selected_action": dead, "post": "yes"}
    assert admin_client.post("/admin/monitor_app/check/", form).status_code == 302
    health = ServiceHealth.objects.get(name="orders")
    assert (health.nodes, health.passing, health.status) == (1, 1, "healthy")


def test_admin_index__plural_names_are_english(admin_client):
    """Django's default plural adds an "s": "Node statuss" on the admin index."""
    from django.apps import apps

    page = admin_client.get("/admin/").content.decode()
    assert "Node statuses" in page
    doubled = [m._meta.label for m in apps.get_models() if str(m._meta.verbose_name_plural).endswith("ss")]
    assert doubled == []
