"""Alerts as platform events: maintenance silence, dependencies, reminders, service health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from event_app.models import Event
from monitor_app import services
from monitor_app.models import Alert, Check, Flip, Maintenance, NodeStatus, ServiceHealth
from monitor_app.services.health import failing_key
from tests.monitor_app.conftest import NOW, result

pytestmark = pytest.mark.django_db
FAST = {"failures_before_critical": 1, "success_before_passing": 1}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def events(type_: str) -> list[Event]:
    return list(Event.objects.filter(type=type_, source="/platform/monitor").order_by("id"))


def test_failed_and_recovered__published_with_the_check(report):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", output="timeout", **FAST), now=NOW + 10)
    report("orders", "n1", result("db", "passing", **FAST), now=NOW + 20)

    [failed] = events("monitor.check.failed")
    check = Check.objects.get(name="db")
    assert failed.subject == str(check.pk)
    assert failed.data | {"at": None} == {
        "check": str(check.pk),
        "service": "orders",
        "node": "n1",
        "name": "db",
        "status": "critical",
        "output": "timeout",
        "old": "passing",
        "new": "critical",
        "reason": "reported",
        "at": None,
    }
    assert len(events("monitor.check.recovered")) == 1
    assert Alert.objects.filter(published_at=None).count() == 0


def test_maintenance__silences_the_failure__raised_when_it_ends_if_still_down(report, committed):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    Maintenance.objects.create(service="orders", starts=at(NOW), ends=at(NOW + 100))
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)

    assert events("monitor.check.failed") == []
    assert Flip.objects.get(new="critical").suppressed == "maintenance"
    with committed():
        services.monitor_tick(now=NOW + 50)  # still inside the window
    assert events("monitor.check.failed") == []
    with committed():
        services.monitor_tick(now=NOW + 101)
    [released] = events("monitor.check.failed")
    assert released.data["released"] is True


def test_maintenance__of_one_check__leaves_the_others_alerting(report):
    report("orders", "n1", result("db", "passing", **FAST), result("disk", "passing", **FAST), now=NOW)
    db = Check.objects.get(name="db")
    Maintenance.objects.create(service="orders", check_ref=db, starts=at(NOW), ends=at(NOW + 100))
    report("orders", "n1", result("db", "critical", **FAST), result("disk", "critical", **FAST), now=NOW + 10)

    assert [e.data["name"] for e in events("monitor.check.failed")] == ["disk"]


def test_dependencies__parent_down__child_failure_silenced(report, committed):
    report("network", "gw", result("uplink", "passing", **FAST), now=NOW)
    report("orders", "n1", result("db", "passing", depends_on=["network/gw/uplink"], **FAST), now=NOW)
    report("network", "gw", result("uplink", "critical", **FAST), now=NOW + 10)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 11)

    assert [e.data["name"] for e in events("monitor.check.failed")] == ["uplink"]
    assert Flip.objects.get(name="db", new="critical").suppressed == "dependency"
    # the parent recovers, the child is still down: its failure is raised now
    report("network", "gw", result("uplink", "passing", **FAST), now=NOW + 20)
    with committed():
        services.monitor_tick(now=NOW + 21)
    assert [e.data["name"] for e in events("monitor.check.failed")] == ["uplink", "db"]


def test_dependencies__a_check_naming_itself__still_alerts(report):
    report("orders", "n1", result("db", "passing", depends_on=["orders/n1/db"], **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)

    assert [e.data["name"] for e in events("monitor.check.failed")] == ["db"]
    assert Flip.objects.get(name="db", new="critical").suppressed == ""


def test_reminders__repeat_while_down__stop_on_recovery(report, committed):
    report("orders", "n1", result("db", "passing", remind_every=60, **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)
    for t in (NOW + 40, NOW + 71, NOW + 100, NOW + 132):
        with committed():
            services.monitor_tick(now=t)

    reminders = [e for e in events("monitor.check.failed") if e.data.get("reminder")]
    assert len(reminders) == 2  # at +70 and +130
    report("orders", "n1", result("db", "passing", **FAST), now=NOW + 140)
    with committed():
        services.monitor_tick(now=NOW + 150)  # the next reminder was due at +190
    with committed():
        services.monitor_tick(now=NOW + 165)
    assert len([e for e in events("monitor.check.failed") if e.data.get("reminder")]) == 2
    assert Check.objects.get(name="db").next_reminder_at is None


def test_outbox__an_alert_left_unpublished_is_published_by_the_loop(report, db):
    # an alert written by a transaction whose after-commit publish never ran (a crash)
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    alert = Alert.objects.create(
        type="monitor.check.failed", subject="x", data={"name": "db"}, created=at(NOW)
    )

    assert services.alerts_publish(now=NOW + 1) == 0  # not yet: its own publish may be on the way
    assert services.alerts_publish(now=NOW + 3) == 1
    assert Event.objects.get(event_id=str(alert.pk)).type == "monitor.check.failed"
    assert services.alerts_publish(now=NOW + 10) == 0


def test_service_health__degraded_below_the_share__recovered_above(report, settings):
    settings.MONITOR_HEALTHY_SHARE = 0.6
    for node in ("n1", "n2", "n3"):
        report("orders", node, result("db", "passing", **FAST), now=NOW)
    assert ServiceHealth.objects.get(name="orders").status == "healthy"

    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)
    assert ServiceHealth.objects.get(name="orders").status == "healthy"  # 2 of 3 pass
    report("orders", "n2", result("db", "critical", **FAST), now=NOW + 10)
    health = ServiceHealth.objects.get(name="orders")
    assert (health.status, health.nodes, health.passing) == ("degraded", 3, 1)
    [degraded] = events("monitor.service.degraded")
    assert (degraded.subject, degraded.data["passing"]) == ("orders", 1)

    report("orders", "n2", result("db", "passing", **FAST), now=NOW + 20)
    assert len(events("monitor.service.recovered")) == 1


def test_service_health__non_critical_checks_do_not_count(report):
    report(
        "orders", "n1", result("db", "passing", **FAST), result("cache", "passing", critical=False, **FAST)
    )
    report("orders", "n1", result("cache", "critical", **FAST), now=NOW + 10)

    assert ServiceHealth.objects.get(name="orders").passing == 1


def test_service_maintenance__silences_degraded(report):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    now = datetime.now(UTC)
    Maintenance.objects.create(
        service="orders", starts=now - timedelta(hours=1), ends=now + timedelta(hours=1)
    )
    report("orders", "n1", result("db", "critical", **FAST), now=datetime.now(UTC).timestamp())

    assert events("monitor.service.degraded") == []
    assert Flip.objects.get(service="orders", name="", new="degraded").suppressed == "maintenance"


def test_service_reminders__while_degraded(report, committed, writer):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    assert (
        writer.patch("/api/v1/monitor/services/orders/", {"remind_every": 60}, format="json").status_code
        == 200
    )
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)
    for t in (NOW + 40, NOW + 71, NOW + 132):
        with committed():
            services.monitor_tick(now=t)

    degraded = events("monitor.service.degraded")
    assert [bool(e.data.get("reminder")) for e in degraded] == [False, True, True]


def test_reminders_set_while_already_down__remind_of_that_failure(report, committed):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)  # alerted, no reminders
    services.service_settings(name="orders", fields={"remind_every": 60}, now=NOW + 20)
    check = Check.objects.get(name="db")
    services.check_update(check=check, fields={"remind_every": 60}, now=NOW + 20)
    for t in (NOW + 50, NOW + 81, NOW + 142):
        with committed():
            services.monitor_tick(now=t)

    assert [bool(e.data.get("reminder")) for e in events("monitor.service.degraded")] == [False, True, True]
    assert [bool(e.data.get("reminder")) for e in events("monitor.check.failed")] == [False, True, True]


def test_reminders_set_by_a_report_while_already_down__remind_of_that_failure(report, committed):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)  # alerted, no reminders
    # the node's next reports bring remind_every: the first one schedules the reminder, the same
    # value repeated by every report after it does not put it off
    for t in (NOW + 20, NOW + 40, NOW + 60, NOW + 79):
        report("orders", "n1", result("db", "critical", remind_every=60, **FAST), now=t)
    assert Check.objects.get(name="db").next_reminder_at == at(NOW + 80)
    for t in (NOW + 50, NOW + 81, NOW + 142):
        with committed():
            services.monitor_tick(now=t)

    assert [bool(e.data.get("reminder")) for e in events("monitor.check.failed")] == [False, True, True]
    # a report setting it to 0 stops them, as an operator's edit does
    report("orders", "n1", result("db", "critical", remind_every=0, **FAST), now=NOW + 150)
    assert Check.objects.get(name="db").next_reminder_at is None


def test_reminders__an_edit_repeating_remind_every__does_not_put_the_reminder_off(report):
    report("orders", "n1", result("db", "passing", remind_every=60, **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)  # next reminder at +70
    check = Check.objects.get(name="db")
    services.check_update(check=check, fields={"remind_every": 60, "ttl": 100}, now=NOW + 30)
    assert Check.objects.get(name="db").next_reminder_at == at(NOW + 70)
    services.check_update(check=check, fields={"remind_every": 120}, now=NOW + 40)
    assert Check.objects.get(name="db").next_reminder_at == at(NOW + 160)


def test_service_maintenance__the_held_degradation_is_raised_when_it_ends(report, committed):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    Maintenance.objects.create(service="orders", starts=at(NOW), ends=at(NOW + 100))
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)
    with committed():
        services.alerts_reconcile(now=NOW + 50)
        services.monitor_tick(now=NOW + 50)
    assert events("monitor.service.degraded") == []

    with committed():
        services.monitor_tick(now=NOW + 101)

    [released] = events("monitor.service.degraded")
    assert released.data["released"] is True


def test_service_flapping__a_flapping_check_stops_flipping_the_services_alerts(report, committed):
    fields = {**FAST, "flap": {"window": 100, "max_transitions": 2}}
    for i, state in enumerate(["passing", "critical", "passing", "critical", "passing", "critical"]):
        report("orders", "n1", result("db", state, **fields), now=NOW + 10 * i)

    # before it flapped (the 3rd flip): degraded, recovered; then the check's flapping alert only
    assert len(events("monitor.check.flapping")) == 1
    assert (len(events("monitor.service.degraded")), len(events("monitor.service.recovered"))) == (1, 1)
    service_flips = Flip.objects.filter(service="orders", name="").order_by("pk")
    assert [f.suppressed for f in service_flips if f.new == "degraded"] == ["", "flapping", "flapping"]

    with committed():  # calmed down and still failing: the held degradation is raised
        services.monitor_tick(now=NOW + 300)
    assert events("monitor.service.degraded")[-1].data["released"] is True


def test_service_settings__bad_values__400(writer, report):
    report("orders", "n1", result("db", "passing"))
    for bad in ({"min_share": 2}, {"remind_every": -1}, {"colour": "red"}, {"min_share": True}):
        response = writer.patch("/api/v1/monitor/services/orders/", bad, format="json")
        assert response.status_code == 400, bad
    assert (
        writer.patch("/api/v1/monitor/services/orders/", {"min_share": 0.9}, format="json").json()[
            "min_share"
        ]
        == 0.9
    )


def node_status(service: str, node: str, status: str, now: float, committed) -> None:
    parsed = services.parse_report({"service": service, "node": node, "status": {"status": status}})
    with committed():
        services.reports_ingest(reports=[parsed], now=now)


def test_a_node_that_stopped__leaves_the_share__its_checks_never_expire(report, committed, settings):
    # Given two nodes of orders passing (each process of a service is a new node: a restart
    # leaves the old one behind, stopped)
    settings.MONITOR_HEALTHY_SHARE = 0.6
    for node in ("old", "new"):
        report("orders", node, result("db", "passing", ttl=30, **FAST), now=NOW)
    # When the old one stops cleanly
    node_status("orders", "old", "STOPPED", NOW + 1, committed)
    # Then the service is one node, passing: healthy, not degraded by the stop
    health = ServiceHealth.objects.get(name="orders")
    assert (health.status, health.nodes, health.passing) == ("healthy", 1, 1)
    # and discovery's ?passing still leaves the stopped node out
    assert "old" in cache.get(failing_key("orders"))
    # and long after its TTL its check has not expired: no flip, no alert
    report("orders", "new", result("db", "passing", ttl=30, **FAST), now=NOW + 100)
    with committed():
        services.monitor_tick(now=NOW + 120)
    assert Check.objects.get(node="old").status == "passing"
    assert not Flip.objects.filter(node="old", new="critical").exists()
    assert events("monitor.check.failed") == [] and events("monitor.service.degraded") == []
    # When it comes back (a result is enough: not every client reports a status), it counts
    # again and its check expires again when it goes quiet
    report("orders", "old", result("db", "passing", ttl=30, **FAST), now=NOW + 131)
    health = ServiceHealth.objects.get(name="orders")
    assert (health.nodes, health.passing) == (2, 2)
    assert NodeStatus.objects.get(node="old").status == "unknown"
    with committed():
        services.monitor_tick(now=NOW + 200)
    assert Check.objects.get(node="old").status == "critical"


def test_the_last_nodes_stopped__unknown_the_alerts_resolved_their_reminders_stopped(
    report, committed, writer
):
    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    writer.patch("/api/v1/monitor/services/orders/", {"remind_every": 60}, format="json")
    report("orders", "n1", result("db", "critical", remind_every=60, **FAST), now=NOW + 10)
    assert ServiceHealth.objects.get(name="orders").alerting
    node_status("orders", "n1", "STOPPED", NOW + 20, committed)
    health = ServiceHealth.objects.get(name="orders")
    assert (health.status, health.nodes, health.alerting, health.next_reminder_at) == (
        "unknown",
        0,
        False,
        None,
    )
    # the service's alert is resolved (an incident opened on it closes), saying how
    [recovered] = events("monitor.service.recovered")
    assert recovered.data["status"] == "unknown"
    # and neither the service nor the stopped node's failed check reminds of anything
    for t in (NOW + 100, NOW + 200, NOW + 400):
        with committed():
            services.monitor_tick(now=t)
    assert len(events("monitor.service.degraded")) == 1
    assert len(events("monitor.check.failed")) == 1


def test_a_stopped_nodes_failure__not_reminded_of_even_with_a_new_remind_every(report, committed):
    report("orders", "n1", result("db", "passing", **FAST), result("disk", "passing", **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), result("disk", "passing", **FAST), now=NOW + 10)
    node_status("orders", "n1", "STOPPED", NOW + 12, committed)
    # an operator sets reminders on the stopped node's failed check
    services.check_update(check=Check.objects.get(name="db"), fields={"remind_every": 60}, now=NOW + 20)
    for t in (NOW + 81, NOW + 142):
        with committed():
            services.monitor_tick(now=t)
    assert [bool(e.data.get("reminder")) for e in events("monitor.check.failed")] == [False]


@pytest.mark.parametrize("back_by", ["result", "status"])
def test_a_stopped_node_back__its_standing_failure_is_reminded_of_again(report, committed, back_by):
    report("orders", "n1", result("db", "passing", remind_every=60, **FAST), now=NOW)
    report("orders", "n1", result("db", "critical", **FAST), now=NOW + 10)  # next reminder at +70
    node_status("orders", "n1", "STOPPED", NOW + 12, committed)  # no reminder while it is stopped
    if back_by == "result":
        report("orders", "n1", result("db", "critical", **FAST), now=NOW + 20)
    else:
        node_status("orders", "n1", "RUNNING", NOW + 20, committed)
    assert Check.objects.get(name="db").next_reminder_at == at(NOW + 80)
    for t in (NOW + 81, NOW + 142):
        report("orders", "n1", result("db", "critical", **FAST), now=t - 1)
        with committed():
            services.monitor_tick(now=t)
    assert [bool(e.data.get("reminder")) for e in events("monitor.check.failed")] == [False, True, True]


def test_stopped_nodes__removed_with_their_checks_after_the_retention(report, committed, settings):
    settings.MONITOR_STOPPED_NODES_KEPT_DAYS = 7
    day = 86_400
    for node in ("old", "back", "late", "live"):
        report("orders", node, result("db", "passing", **FAST), now=NOW)
    report("orders", "old", result("db", "critical", **FAST), now=NOW + 1)  # a flip of its check
    for node in ("old", "back"):
        node_status("orders", node, "STOPPED", NOW + 2, committed)
    node_status("orders", "late", "STOPPED", NOW + 6 * day, committed)
    report("orders", "back", result("db", "passing", **FAST), now=NOW + 3 * day)  # came back
    service_flips = Flip.objects.filter(service="orders", name="").count()
    assert "old" in cache.get(failing_key("orders"))

    with committed():
        removed = services.stopped_nodes_purge(now=datetime.fromtimestamp(NOW + 7 * day + 3, UTC))

    assert removed == 1
    assert sorted(NodeStatus.objects.values_list("node", flat=True)) == ["back", "late"]  # live sent none
    assert sorted(Check.objects.values_list("node", flat=True)) == ["back", "late", "live"]
    assert not Flip.objects.filter(node="old").exists()
    assert Flip.objects.filter(service="orders", name="").count() == service_flips
    assert "old" not in cache.get(failing_key("orders"))
    health = ServiceHealth.objects.get(name="orders")
    assert (health.nodes, health.passing) == (2, 2)  # late is stopped: out of the share, still kept


def test_a_write_racing_the_stop__cannot_cache_a_snapshot_that_hides_the_node_coming_back(report, committed):
    from monitor_app.services import ingest

    report("orders", "n1", result("db", "passing", **FAST), now=NOW)
    before_the_stop = ingest.snapshot_of(Check.objects.get(node="n1"))  # read by a racing write
    node_status("orders", "n1", "STOPPED", NOW + 1, committed)
    ingest.store_snapshot("orders", "n1", "db", before_the_stop)  # ... which commits after the stop
    report("orders", "n1", result("db", "passing", **FAST), now=NOW + 2)  # the node is back
    assert NodeStatus.objects.get(node="n1").status == "unknown"  # counted again
    assert Check.objects.get(node="n1").expires_at is not None  # and its check re-armed
