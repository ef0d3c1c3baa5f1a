"""JSON types in the monitor's write APIs: a number field refuses booleans and strings, a boolean
field refuses strings and numbers, a 400 naming the field that changes nothing."""

from __future__ import annotations

import pytest

from monitor_app.models import Check, ServiceHealth
from tests.monitor_app.conftest import result

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "change",
    [
        {"min_share": True},
        {"min_share": "0.5"},
        {"min_share": 10**400},  # too large for a float
        {"remind_every": True},
        {"remind_every": "60"},
    ],
)
def test_service_settings__a_boolean_or_a_string_for_a_number__400_naming_it(writer, report, change):
    report("orders", "n1", result("db", "passing"))
    assert (
        writer.patch("/api/v1/monitor/services/orders/", {"min_share": 0.8}, format="json").status_code == 200
    )

    response = writer.patch("/api/v1/monitor/services/orders/", change, format="json")

    assert response.status_code == 400, response.content
    assert next(iter(change)) in response.json()["error"]["details"]
    health = ServiceHealth.objects.get(name="orders")
    assert (health.min_share, health.remind_every) == (0.8, ServiceHealth().remind_every)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"critical": "yes"}, "check.critical"),
        ({"critical": 1}, "check.critical"),
        ({"interval": True}, "check.interval"),
        ({"interval": "60"}, "check.interval"),
        ({"remind_every": "60"}, "check.remind_every"),
        ({"failure_rate": {"window": 60, "threshold": True}}, "check.failure_rate.threshold"),
        ({"flap": {"window": "60", "max_transitions": 3}}, "check.flap.window"),
    ],
)
def test_check_and_job__a_mistyped_setting__400_naming_it_and_nothing_changed(writer, report, change, field):
    report("orders", "n1", result("db", "passing"))
    check = Check.objects.get(name="db")

    patched = writer.patch(f"/api/v1/monitor/checks/{check.pk}/", change, format="json")
    made = writer.post(
        "/api/v1/monitor/checks/", {"service": "backups", "name": "j", **change}, format="json"
    )

    assert patched.status_code == 400, patched.content
    assert field in patched.json()["error"]["details"], patched.json()
    if set(change) <= {"interval", "remind_every"}:  # what a job takes (the others: 400 unknown field)
        assert field in made.json()["error"]["details"], made.json()
    assert Check.objects.get(pk=check.pk).version == check.version
    assert made.status_code == 400 and not Check.objects.filter(service="backups").exists()


def _report(**fields: object) -> dict[str, object]:
    return {"service": "orders", "node": "n1", **fields}


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (_report(checks={}), "report.checks"),
        (_report(checks=None), "report.checks"),
        (_report(checks=0), "report.checks"),
        (_report(checks=[result("db", "passing", results=[])]), "report.checks[0].results"),
        (_report(checks=[result("db", "passing", results=None)]), "report.checks[0].results"),
        (_report(status={"status": "RUNNING", "info": []}), "report.status.info"),
        (_report(stats={"endpoints": {}}), "report.stats.endpoints"),
        (_report(stats={"endpoints": None}), "report.stats.endpoints"),
    ],
)
def test_report__an_empty_or_null_value_of_another_type__400_naming_it_and_nothing_stored(
    writer, report, field
):
    response = writer.post("/api/v1/monitor/reports/", report, format="json")
    batch = writer.post("/api/v1/monitor/reports/batch/", {"reports": [report]}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_report"
    assert list(response.json()["error"]["details"]) == [field]
    assert list(batch.json()["error"]["details"]) == [field.replace("report", "reports[0]", 1)]
    assert not Check.objects.exists() and not ServiceHealth.objects.exists()


def test_report__without_checks__a_status_alone_is_taken(writer):
    response = writer.post("/api/v1/monitor/reports/", _report(status={"status": "RUNNING"}), format="json")

    assert (response.status_code, response.json()["checks"]) == (200, [])


@pytest.mark.parametrize("field", ["ttl", "interval", "failures_before_critical", "remind_every", "critical"])
def test_check_and_job__a_null_setting__400_naming_it_and_nothing_changed(writer, report, field):
    report("orders", "n1", result("db", "passing"))
    check = Check.objects.get(name="db")

    patched = writer.patch(f"/api/v1/monitor/checks/{check.pk}/", {field: None}, format="json")
    made = writer.post(
        "/api/v1/monitor/checks/", {"service": "backups", "name": "j", "ttl": None}, format="json"
    )

    assert patched.status_code == 400, patched.content
    assert list(patched.json()["error"]["details"]) == [f"check.{field}"]
    assert (made.status_code, list(made.json()["error"]["details"])) == (400, ["check.ttl"])
    assert Check.objects.get(pk=check.pk).version == check.version
    assert not Check.objects.filter(service="backups").exists()


@pytest.mark.parametrize("field", ["failure_rate", "flap"])
def test_check__a_null_failure_rate_or_flap__turns_it_off(writer, report, field):
    setting = {"failure_rate": {"window": 60, "threshold": 0.5}, "flap": {"window": 60, "max_transitions": 3}}
    report("orders", "n1", result("db", "passing", **{field: setting[field]}))
    check = Check.objects.get(name="db")
    assert getattr(check, field) is not None

    patched = writer.patch(f"/api/v1/monitor/checks/{check.pk}/", {field: None}, format="json")

    assert (patched.status_code, patched.json()[field]) == (200, None)
    assert getattr(Check.objects.get(pk=check.pk), field) is None


def test_cron_job__an_interval__400_naming_it_and_nothing_changed(writer):
    cron = {"service": "backups", "kind": "cron", "schedule": "0 3 * * *"}
    job = writer.post("/api/v1/monitor/checks/", {**cron, "name": "nightly"}, format="json").json()

    patched = writer.patch(f"/api/v1/monitor/checks/{job['id']}/", {"interval": 60}, format="json")
    made = writer.post("/api/v1/monitor/checks/", {**cron, "name": "other", "interval": 60}, format="json")

    for refused in (patched, made):
        assert refused.status_code == 400, refused.content
        error = refused.json()["error"]
        assert (error["code"], list(error["details"])) == ("invalid_schedule", ["check.interval"])
    assert writer.get(f"/api/v1/monitor/checks/{job['id']}/").json() == job
    assert not Check.objects.filter(name="other").exists()


def test_period_job__a_schedule__400_naming_it(writer):
    job = writer.post("/api/v1/monitor/checks/", {"service": "backups", "name": "j"}, format="json").json()

    for field, value in (("schedule", "0 3 * * *"), ("timezone", "UTC")):
        patched = writer.patch(f"/api/v1/monitor/checks/{job['id']}/", {field: value}, format="json")
        error = patched.json()["error"]
        assert (patched.status_code, error["code"], list(error["details"])) == (
            400,
            "invalid_schedule",
            [f"check.{field}"],
        )
