"""The state engine: thresholds, failure rate, flapping, staleness, exactly one transition."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from event_app.models import Event
from monitor_app import services
from monitor_app.models import Check, Flip
from monitor_app.services import ingest
from tests.monitor_app.conftest import NOW, result

pytestmark = pytest.mark.django_db


def states(report, service, node, name, sequence, *, start=NOW, every=10.0, **fields):
    seen = []
    for i, status in enumerate(sequence):
        seen.append(report(service, node, result(name, status, **fields), now=start + i * every)[0]["status"])
    return seen


def test_first_result__is_taken_as_it_is(report):
    assert report("orders", "n1", result("db", "passing"))[0]["status"] == "passing"
    assert report("orders", "n2", result("db", "critical"))[0]["status"] == "critical"


def test_n_failures__critical_only_after_failures_before_critical(report):
    seen = states(report, "orders", "n1", "db", ["passing", "critical", "critical", "critical"])

    assert seen == ["passing", "passing", "passing", "critical"]
    flip = Flip.objects.get(name="db", new="critical")
    assert (flip.old, flip.reason) == ("passing", "reported")


def test_success_before_passing__two_passes_to_recover(report):
    seen = states(
        report, "orders", "n1", "db", ["critical", "passing", "passing"], failures_before_critical=1
    )

    assert seen == ["critical", "critical", "passing"]


def test_a_result_that_changes_the_thresholds__is_judged_by_the_new_ones(report):
    assert report("orders", "n1", result("db", "passing"), now=NOW)[0]["status"] == "passing"

    answer = report("orders", "n1", result("db", "critical", failures_before_critical=1), now=NOW + 10)

    assert answer[0]["status"] == "critical"  # one failure is enough now, as the result says
    assert Check.objects.get(name="db").failures_before_critical == 1


def test_one_failure_between_passes__never_flips(report):
    seen = states(report, "orders", "n1", "db", ["passing", "critical", "passing", "critical", "passing"])

    assert set(seen) == {"passing"}
    assert not Flip.objects.filter(new="critical").exists()


def test_failure_rate__flaky_check_goes_critical_without_n_in_a_row(report):
    rule = {"window": 300, "threshold": 0.5, "min_samples": 4}
    seen = states(
        report, "orders", "n1", "api", ["passing", "critical", "passing", "critical"], failure_rate=rule
    )

    assert seen == ["passing", "passing", "passing", "critical"]
    assert Flip.objects.get(new="critical").old == "passing"


def test_failure_rate__old_samples_leave_the_window(report):
    rule = {"window": 15, "threshold": 0.25, "min_samples": 2}
    seen = states(
        report, "orders", "n1", "api", ["passing", "critical", "passing", "passing"], failure_rate=rule
    )

    # 10 s: 1 of 2 failed; 20 s: 1 of 2 in the window, still critical; 30 s: the failure has left
    # the 15 s window (counted, 1 of 4 would still reach the 0.25 threshold): passing
    assert seen == ["passing", "critical", "critical", "passing"]


def test_flapping__alerts_once_not_per_flip(report):
    flap = {"window": 600, "max_transitions": 3}
    states(
        report,
        "orders",
        "n1",
        "db",
        ["passing", "critical", "passing", "critical", "passing", "critical", "passing", "critical"],
        failures_before_critical=1,
        success_before_passing=1,
        flap=flap,
    )

    assert Flip.objects.filter(check_ref__name="db").count() == 8  # the first state, then 7 flips
    assert Event.objects.filter(type="monitor.check.flapping").count() == 1
    # before it flapped (the 4th flip): failed, recovered, failed; after: nothing more
    assert Event.objects.filter(type="monitor.check.failed").count() == 2
    assert Event.objects.filter(type="monitor.check.recovered").count() == 1
    assert Check.objects.get(name="db").flapping is True


def test_flapping__calms_down__the_held_failure_is_raised(report, committed):
    flap = {"window": 100, "max_transitions": 2}
    fields = {"failures_before_critical": 1, "success_before_passing": 1, "flap": flap}
    states(report, "orders", "n1", "db", ["passing", "critical", "passing", "critical"], **fields)
    failed_before = Event.objects.filter(type="monitor.check.failed").count()
    # when the window passes without a flip
    with committed():
        services.alerts_reconcile(now=NOW + 30 + 101)
    with committed():
        services.alerts_reconcile(now=NOW + 30 + 101)

    check = Check.objects.get(name="db")
    assert check.flapping is False and check.status == "critical" and check.alerting
    assert Event.objects.filter(type="monitor.check.failed").count() == failed_before + 1


def test_unchanged_results__no_database_write(report, django_assert_num_queries):
    report("orders", "n1", result("db", "passing"), now=NOW)
    report("orders", "n1", result("db", "passing"), now=NOW + 10)  # successes reach their cap
    version = Check.objects.get(name="db").version
    # when: ten more unchanged results
    with django_assert_num_queries(0):
        for i in range(10):
            report("orders", "n1", result("db", "passing", output=f"ok {i}"), now=NOW + 20 + i * 10)

    assert Check.objects.get(name="db").version == version
    # and the latest output is served from the cache
    from monitor_app import selectors

    assert selectors.checks_rendered([Check.objects.get(name="db")])[0]["output"] == "ok 9"


def test_stale__unchanged_results_renew_the_deadline__silence_expires_it(report, committed):
    report("orders", "n1", result("db", "passing", interval=10, ttl=30), now=NOW)
    report("orders", "n1", result("db", "passing", interval=10, ttl=30), now=NOW + 10)
    report("orders", "n1", result("db", "passing", interval=10, ttl=30), now=NOW + 20)  # cache only
    # the stored deadline (NOW + 40) passed, but the cached result renews it
    tick = services.monitor_tick(now=NOW + 45)
    assert (tick.renewed, tick.expired) == (1, 0)
    assert Check.objects.get(name="db").status == "passing"
    # then no result for longer than the TTL
    with committed():
        tick = services.monitor_tick(now=NOW + 51)
    assert tick.expired == 1
    check = Check.objects.get(name="db")
    assert (check.status, check.expires_at) == ("critical", None)
    assert Flip.objects.get(new="critical").reason == "expired"
    assert Event.objects.filter(type="monitor.check.failed", subject=str(check.pk)).count() == 1


def test_expired_check__next_result_brings_it_back(report, committed):
    report("orders", "n1", result("db", "passing", interval=10, ttl=20), now=NOW)
    with committed():
        services.monitor_tick(now=NOW + 21)
    seen = states(report, "orders", "n1", "db", ["passing", "passing"], start=NOW + 30)

    assert seen == ["critical", "passing"]
    assert Event.objects.filter(type="monitor.check.recovered").count() == 1


def test_expire__two_workers_with_the_same_view__one_transition(report):
    report("orders", "n1", result("db", "passing", interval=10, ttl=20), now=NOW)
    first = Check.objects.get(name="db")
    second = Check.objects.get(name="db")  # another worker read the same row

    a = services.check_expire(check=first, now=NOW + 25, reason="expired")
    b = services.check_expire(check=second, now=NOW + 25, reason="expired")

    assert (a is not None, b is None) == (True, True)
    assert Flip.objects.filter(new="critical").count() == 1


def test_apply__a_stale_writer_reloads__one_flip(report):
    report("orders", "n1", result("db", "passing", failures_before_critical=1), now=NOW)
    stale = Check.objects.get(name="db")
    services.check_apply(check=Check.objects.get(name="db"), reported="critical", now=NOW + 1)
    # the stale writer's version no longer matches: it reads again, sees critical, changes nothing
    applied = services.check_apply(check=stale, reported="critical", now=NOW + 2)

    assert applied.flip is None
    assert Flip.objects.filter(new="critical").count() == 1


@pytest.mark.django_db(transaction=True)
def test_expire__two_threads__exactly_one_flip(committed):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; the version compare is what this test is about on PostgreSQL")
    parsed = services.parse_report(
        {"service": "orders", "node": "n1", "checks": [result("db", "passing", interval=10, ttl=20)]}
    )
    services.reports_ingest(reports=[parsed], now=NOW)
    barrier = threading.Barrier(2)
    outcomes = []

    def run():
        check = Check.objects.get(name="db")
        barrier.wait()
        outcomes.append(services.check_expire(check=check, now=NOW + 30, reason="expired"))
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o is None for o in outcomes) == [False, True]
    assert Flip.objects.filter(new="critical").count() == 1


def test_output__over_4_kib__truncated_and_flagged(report):
    report("orders", "n1", result("db", "critical", output="é" * 5000))

    check = Check.objects.get(name="db")
    assert check.truncated is True
    assert len(check.output.encode()) <= 4096


def test_original_states__ok_and_error__mapped(report):
    assert report("orders", "n1", result("a", "OK"))[0]["status"] == "passing"
    assert report("orders", "n1", result("b", "ERROR"))[0]["status"] == "critical"


def test_snapshot__a_lost_race_heals__stale_snapshot_is_not_trusted_over_a_newer_version(report):
    report("orders", "n1", result("db", "passing"))
    snap = ingest.cache.get(ingest.snapshot_key("orders", "n1", "db"))
    ingest.store_snapshot(
        "orders", "n1", "db", {**snap, "version": snap["version"] - 1, "status": "critical"}
    )

    assert ingest.cache.get(ingest.snapshot_key("orders", "n1", "db"))["status"] == "passing"


def test_unchanged_results__a_cold_cache_costs_one_read__no_write(report, django_assert_num_queries):
    checks = [result(f"c{i}", "passing") for i in range(5)]
    report("orders", "n1", *checks, now=NOW)
    report("orders", "n1", *checks, now=NOW + 10)
    versions = dict(Check.objects.values_list("name", "version"))
    ingest.cache.clear()  # the shared cache restarted: no snapshot, no "known service"
    with django_assert_num_queries(2):  # the snapshots in one read, and the service's row
        report("orders", "n1", *checks, now=NOW + 20)

    assert dict(Check.objects.values_list("name", "version")) == versions


def test_state_loop__scheduled_by_beat__every_second__and_runs_as_a_task(settings, report):
    entry = settings.CELERY_BEAT_SCHEDULE["monitor-tick"]
    assert (entry["task"], entry["schedule"]) == ("monitor_app.tasks.tick", 1.0)
    import time

    from monitor_app import tasks

    report("orders", "n1", result("db", "passing", interval=1, ttl=1), now=time.time() - 100)

    assert tasks.tick.apply().get()["expired"] == 1  # its deadline passed 99 s ago
    assert set(tasks.downsample.apply().get()) == {"minutes", "hours", "dropped"}


def test_expire__many_checks_of_a_service_late_at_once__its_health_computed_once(report, monkeypatch):
    """A fleet-wide outage: every node's check misses its deadline in the same loop run."""
    from monitor_app.models import ServiceHealth
    from monitor_app.services import health, loop

    for node in ("n1", "n2", "n3"):
        report("orders", node, result("db", "passing", interval=10, ttl=20), now=NOW)
    report("billing", "b1", result("db", "passing", interval=10, ttl=20), now=NOW)
    refreshed = []
    real = health.service_refresh
    monkeypatch.setattr(health, "service_refresh", lambda **kw: refreshed.append(kw["name"]) or real(**kw))

    assert loop.checks_overdue(now=NOW + 25) == (0, 4)

    assert sorted(refreshed) == ["billing", "orders"]
    assert Flip.objects.filter(name="db", new="critical").count() == 4
    assert ServiceHealth.objects.get(name="orders").passing == 0
