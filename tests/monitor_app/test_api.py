"""The monitor API: reports, checks, services, history, maintenance, keys; refusals and odd input."""

from __future__ import annotations

import math
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from auth_app import services as auth_services
from auth_app.models import Account
from monitor_app import services
from monitor_app.models import Check, Flip, Maintenance, PingKey, StatSample
from monitor_app.services import history
from platformsite.api.errors import Invalid
from tests.monitor_app.conftest import result

pytestmark = pytest.mark.django_db
FAST = {"failures_before_critical": 1, "success_before_passing": 1}


def body(service="orders", node="n1", *checks, **extra):
    return {"service": service, "node": node, "checks": list(checks), **extra}


def test_report__stores_and_answers_the_states(writer, committed):
    with committed():
        response = writer.post(
            "/api/v1/monitor/reports/",
            body("orders", "n1", result("db", "passing"), result("disk", "critical", output="full")),
            format="json",
        )

    assert response.status_code == 200, response.content
    states = {c["name"]: (c["status"], c["changed"]) for c in response.json()["checks"]}
    assert states == {"db": ("passing", True), "disk": ("critical", True)}
    assert Check.objects.get(name="disk").output == "full"


def test_report__status_and_stats__kept(writer, reader, committed):
    stats = {
        "cpu": 12.5,
        "memory": 1e8,
        "seconds": 10,
        "endpoints": [{"method": "GET /a", "success": 90, "errors": 10}],
    }
    with committed():
        response = writer.post(
            "/api/v1/monitor/reports/",
            body(
                "orders",
                "n1",
                result("db", "passing"),
                status={"status": "RUNNING", "info": {"v": 1}},
                stats=stats,
            ),
            format="json",
        )
    assert response.status_code == 200

    detail = reader.get("/api/v1/monitor/services/orders/").json()
    assert detail["members"][0]["status"]["status"] == "running"
    series = reader.get("/api/v1/monitor/stats/?service=orders").json()
    point = series["points"][0]
    assert (point["cpu"], point["requests"], point["errors"], point["request_rate"]) == (12.5, 100, 10, 10.0)


@pytest.mark.parametrize(
    "field, value",
    [("cpu", 1e308), ("memory", 2.0**65), ("disk", -1), ("runtime", 1e11), ("seconds", 86401), ("cpu", True)],
)
def test_report__a_stat_out_of_range__400_naming_it(writer, field, value):
    stats = {"cpu": 1, field: value}

    response = writer.post("/api/v1/monitor/reports/", body("orders", "n1", stats=stats), format="json")

    assert response.status_code == 400, response.content
    assert f"stats.{field}" in response.content.decode()
    assert not StatSample.objects.exists()


def test_stats__a_window_longer_than_a_day__merges_the_last_days_raw_samples_to_its_resolution(
    writer, reader, committed, monkeypatch
):
    from monitor_app import selectors

    # given a sample of three days ago, downsampled to a minute row
    with committed():
        writer.post(
            "/api/v1/monitor/reports/", body("orders", "n1", stats={"cpu": 1, "seconds": 10}), format="json"
        )
    StatSample.objects.update(at=timezone.now() - timedelta(days=3))
    history.stats_downsample(now=timezone.now())
    # and the raw samples a node reports every 10 s, more than a page of points
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    StatSample.objects.bulk_create(
        StatSample(
            service="orders", node="n1", at=minute + timedelta(seconds=s), cpu=cpu, seconds=10, requests=5
        )
        for s, cpu in ((0, 2), (10, 4), (20, 6), (60, 8))
    )
    monkeypatch.setattr(selectors, "MAX_STAT_POINTS", 3)
    # when a week is asked for
    since = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    series = reader.get(f"/api/v1/monitor/stats/?service=orders&since={since}").json()
    # then the raw samples are merged per minute, beside the stored minute row, oldest first
    assert series["resolution"] == "minute"
    points = [(p["cpu"], p["resolution"], p["requests"]) for p in series["points"]]
    assert points == [(1, "minute", 0), (4, "minute", 15), (8, "minute", 5)]


@pytest.mark.parametrize("node", ["\x00", "a\x00b", "two words", "n" * 201])
def test_stats__a_node_outside_the_grammar__400_naming_it(reader, node):
    response = reader.get("/api/v1/monitor/stats/", {"service": "orders", "node": node})

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_node"


def test_stats__more_points_than_the_limit__the_newest_are_kept(reader, monkeypatch):
    from monitor_app import selectors

    now = timezone.now()
    StatSample.objects.bulk_create(
        StatSample(service="orders", node="n1", at=now - timedelta(seconds=10 * i), cpu=i, seconds=10)
        for i in range(5)
    )
    monkeypatch.setattr(selectors, "MAX_STAT_POINTS", 3)
    points = reader.get("/api/v1/monitor/stats/?service=orders").json()["points"]
    assert [p["cpu"] for p in points] == [2, 1, 0]


def test_stats__the_largest_values_downsample_and_read_back(writer, reader, committed):
    # Two samples at the limits average without overflowing (1e308 made the hourly downsampling
    # store an infinity on SQLite, then every read of the series failed; PostgreSQL refused it).
    largest = {"cpu": 1e6, "memory": 2.0**64, "disk": 2.0**64, "runtime": 1e10, "seconds": 86400}
    for _ in range(2):
        with committed():
            response = writer.post(
                "/api/v1/monitor/reports/", body("orders", "n1", stats=largest), format="json"
            )
        assert response.status_code == 200, response.content
    StatSample.objects.update(at=timezone.now() - timedelta(days=3))

    history.stats_downsample(now=timezone.now())

    since = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = reader.get(f"/api/v1/monitor/stats/?service=orders&since={since}")
    assert response.status_code == 200, response.content
    (point,) = response.json()["points"]
    assert (point["cpu"], point["memory"]) == (1e6, 2.0**64)


def test_migration_0003__forgets_stored_values_out_of_range():
    migration = import_module("monitor_app.migrations.0003_stats_within_limits")
    at = timezone.now()
    kept = StatSample.objects.create(service="s", node="n1", at=at, cpu=99.0, memory=1e9, seconds=10)
    bad = StatSample.objects.create(service="s", node="n2", at=at, cpu=math.inf, memory=1e308, seconds=1e308)

    migration.forget_out_of_range(django_apps, None)

    kept.refresh_from_db()
    bad.refresh_from_db()
    assert (kept.cpu, kept.memory, kept.seconds) == (99.0, 1e9, 10)
    assert (bad.cpu, bad.memory, bad.seconds) == (None, None, 0)


def test_report__output_with_nul_or_a_lone_surrogate__kept_as_replacement_characters(writer, committed):
    text = (
        '{"service": "orders", "node": "n1",'
        ' "checks": [{"name": "db", "status": "passing", "output": "a\\u0000b\\ud800c"}]}'
    )
    with committed():
        response = writer.post("/api/v1/monitor/reports/", data=text, content_type="application/json")
    assert response.status_code == 200, response.content
    assert Check.objects.get(name="db").output == "a\ufffdb\ufffdc"  # the surrogate was a "?"


def test_report__a_lone_surrogate_in_an_endpoint_name__400_naming_it(writer):
    # SQLite stored it; PostgreSQL's jsonb refuses it (a 500 there)
    text = (
        '{"service": "orders", "node": "n1", "stats": {"cpu": 1, "endpoints": [{"method": "GET /x\\ud800",'
        ' "success": 1}]}}'
    )

    response = writer.post("/api/v1/monitor/reports/", data=text, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "stats.endpoints[0].method" in response.content.decode()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"bogus": 1}, "report.bogus"),
        ({"checks": [{"name": "db", "status": "passing", "intervall": 10}]}, "report.checks[0].intervall"),
        ({"status": {"status": "RUNNING", "bogus": 1}}, "report.status.bogus"),
        ({"stats": {"cpu": 1, "bogus": 1}}, "report.stats.bogus"),
        (
            {"stats": {"endpoints": [{"method": "GET /", "success": 1, "oops": 2}]}},
            "report.stats.endpoints[0].oops",
        ),
    ],
)
def test_report__an_unknown_field__400_naming_it_and_nothing_stored(writer, extra, field):
    response = writer.post("/api/v1/monitor/reports/", {**body("orders", "n1"), **extra}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Check.objects.exists() and not StatSample.objects.exists()


def test_batch__several_nodes_in_one_call(writer, committed):
    reports = [body("orders", f"n{i}", result("db", "passing")) for i in range(3)]
    with committed():
        response = writer.post("/api/v1/monitor/reports/batch/", {"reports": reports}, format="json")

    assert response.status_code == 200
    assert Check.objects.filter(name="db").count() == 3


@pytest.mark.parametrize(
    ("checks", "field"),
    [
        ([result("db", "sideways")], "report.checks[0].status"),
        ([result("db", "passing", interval=0)], "report.checks[0].interval"),
        ([result("db", "passing", interval=-5)], "report.checks[0].interval"),
        ([result("db", "passing", interval=10, ttl=5)], "report.checks[0].ttl"),
        ([result("bad name", "passing")], "report.checks[0].name"),
        (
            [result("db", "passing", failure_rate={"window": 10, "threshold": 2})],
            "report.checks[0].failure_rate.threshold",
        ),
        ([result("db", "passing", depends_on=["nope"])], "report.checks[0].depends_on"),
        ([result("db", "passing", results=[1])], "report.checks[0].results"),
        ([result("db", "passing", output=5)], "report.checks[0].output"),
        ([result("db", "passing", error=5)], "report.checks[0].error"),
        ([result("db", "passing"), result("db", "critical")], "report.checks"),
        ("x", "report.checks"),
    ],
)
def test_report__bad_input__400_naming_the_field__nothing_stored(writer, checks, field):
    response = writer.post(
        "/api/v1/monitor/reports/", body("orders", "n1", *checks) | {"checks": checks}, format="json"
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["details"])) == ("invalid_report", [field])
    assert not Check.objects.exists()


def test_report__bad_input__keeps_what_was_stored(writer, committed):
    with committed():
        writer.post("/api/v1/monitor/reports/", body("orders", "n1", result("db", "passing")), format="json")
    response = writer.post(
        "/api/v1/monitor/reports/",
        body("orders", "n1", result("db", "critical"), result("x", "nope")),
        format="json",
    )

    assert response.status_code == 400
    assert Check.objects.get(name="db").status == "passing"


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"service": "orders"},
        {"service": "bad name", "node": "n1"},
        {"service": "orders", "node": "\x00"},
    ],
)
def test_report__not_a_report__400(writer, payload):
    response = writer.post("/api/v1/monitor/reports/", payload, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_report"


@pytest.mark.parametrize("status", [[], {}, ["RUNNING"]])
def test_report__a_node_status_that_is_not_a_string__400(writer, status):
    report = body("orders", "n1", result("db", "passing")) | {"status": {"status": status}}

    response = writer.post("/api/v1/monitor/reports/", report, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["details"])) == ("invalid_report", ["report.status.status"])
    assert not Check.objects.exists()


@pytest.mark.parametrize("service", [{}, [], 5, None])
def test_batch__a_service_that_is_not_a_string__400(writer, service):
    batch = {"reports": [{"service": service, "node": "n1", "checks": []}]}

    response = writer.post("/api/v1/monitor/reports/batch/", batch, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_report")


def test_batch__an_unknown_field_beside_the_reports__400_naming_it_and_nothing_stored(writer):
    batch = {"reports": [body("orders", "n1", result("db", "passing"))], "reprots": []}

    response = writer.post("/api/v1/monitor/reports/batch/", batch, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["details"])) == ("invalid_report", ["reprots"])
    assert not Check.objects.exists()


def test_report__output_too_long__truncated_not_refused(writer, committed):
    with committed():
        response = writer.post(
            "/api/v1/monitor/reports/",
            body("orders", "n1", result("db", "critical", output="x" * 10_000)),
            format="json",
        )

    assert response.status_code == 200
    check = writer.get(f"/api/v1/monitor/checks/{Check.objects.get().pk}/").json()
    assert (len(check["output"]), check["truncated"]) == (4096, True)


@pytest.fixture
def orders_only(api_client, committed):
    """A caller with monitor scopes whose role allows only the 'orders' service."""
    caller = api_client("monitor:read", "monitor:write")
    with committed():
        role = auth_services.role_create(name="orders-team")
        auth_services.rule_create(role=role, resource="monitor:orders", action="*")
        auth_services.binding_create(role=role, account=Account.objects.order_by("-id").first())
    return caller


def test_policy__report_for_another_service__403(orders_only, report):
    assert (
        orders_only.post(
            "/api/v1/monitor/reports/", body("orders", "n1", result("db", "passing")), format="json"
        ).status_code
        == 200
    )
    response = orders_only.post(
        "/api/v1/monitor/reports/", body("billing", "n1", result("db", "passing")), format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_denied")
    batch = {
        "reports": [
            body("orders", "n1", result("db", "passing")),
            body("billing", "b1", result("db", "passing")),
        ]
    }
    assert orders_only.post("/api/v1/monitor/reports/batch/", batch, format="json").status_code == 403
    assert not Check.objects.filter(service="billing").exists()


def test_policy__reads_of_another_service__403(orders_only, report):
    report("billing", "b1", result("db", "passing"))
    check = Check.objects.get(service="billing")

    for path in (
        "/api/v1/monitor/services/billing/",
        f"/api/v1/monitor/checks/{check.pk}/",
        f"/api/v1/monitor/checks/{check.pk}/flips/",
        "/api/v1/monitor/stats/?service=billing",
    ):
        response = orders_only.get(path)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_denied"), path


def test_policy__lists__leave_out_the_services_it_denies(orders_only, report):
    # given a failing check in orders and in billing, and a window in each
    for service in ("orders", "billing"):
        report(service, "n1", result("db", "passing", failures_before_critical=1))
        report(service, "n1", result("db", "critical", failures_before_critical=1))
        Maintenance.objects.create(
            service=service, starts="2030-01-01T00:00:00Z", ends="2030-01-02T00:00:00Z", reason="x"
        )
    # then the lists show orders only
    for path, key in (
        ("/api/v1/monitor/services/", "name"),
        ("/api/v1/monitor/checks/", "service"),
        ("/api/v1/monitor/flips/", "service"),
        ("/api/v1/monitor/maintenance/", "service"),
    ):
        rows = orders_only.get(path).json()["results"]
        assert rows and {row[key] for row in rows} == {"orders"}, path


def test_scopes__read_cannot_report__outsider_cannot_read(reader, outsider, report):
    response = reader.post(
        "/api/v1/monitor/reports/", body("orders", "n1", result("db", "passing")), format="json"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")
    assert outsider.get("/api/v1/monitor/services/").status_code == 403


def test_services__list_and_detail(reader, report):
    report("orders", "n1", result("db", "passing"), result("disk", "critical", **FAST))
    report("billing", "b1", result("db", "passing"))

    listed = reader.get("/api/v1/monitor/services/").json()["results"]
    assert [(s["name"], s["status"], s["passing"], s["checks"]["critical"]) for s in listed] == [
        ("billing", "healthy", 1, 0),
        ("orders", "degraded", 0, 1),
    ]
    detail = reader.get("/api/v1/monitor/services/orders/").json()
    assert [n["node"] for n in detail["members"]] == ["n1"]
    assert {c["name"] for c in detail["members"][0]["checks"]} == {"db", "disk"}
    assert reader.get("/api/v1/monitor/services/nope/").status_code == 404


def test_services__list__queries_do_not_grow_with_services(reader, report, django_assert_max_num_queries):
    for i in range(12):
        report(f"svc{i}", "n1", result("db", "passing"))
    reader.get("/api/v1/monitor/services/")  # warm the token

    with django_assert_max_num_queries(6):
        response = reader.get("/api/v1/monitor/services/")
    assert len(response.json()["results"]) == 12


def test_checks__list_filters__queries_pinned(reader, report, django_assert_max_num_queries):
    for i in range(10):
        report("orders", f"n{i}", result("db", "passing"), result("disk", "critical"))
    reader.get("/api/v1/monitor/checks/")

    with django_assert_max_num_queries(2):
        response = reader.get("/api/v1/monitor/checks/?status=critical")
    assert {c["name"] for c in response.json()["results"]} == {"disk"}
    assert reader.get("/api/v1/monitor/checks/?status=nope").status_code == 400


def test_check__history_and_uptime(reader, report):
    report("orders", "n1", result("db", "passing", **FAST))
    report("orders", "n1", result("db", "critical", **FAST), now=1_800_000_100.0)
    check = Check.objects.get(name="db")

    flips = reader.get(f"/api/v1/monitor/checks/{check.pk}/flips/").json()["results"]
    assert [(f["old"], f["new"]) for f in flips] == [("passing", "critical"), ("unknown", "passing")]
    months = reader.get(f"/api/v1/monitor/checks/{check.pk}/uptime/?months=2").json()["months"]
    assert len(months) == 2
    assert reader.get(f"/api/v1/monitor/checks/{check.pk}/uptime/?months=99").status_code == 400


def test_check__patch_thresholds__bad_values_400(writer, report):
    report("orders", "n1", result("db", "passing"))
    check = Check.objects.get(name="db")

    ok = writer.patch(f"/api/v1/monitor/checks/{check.pk}/", {"failures_before_critical": 5}, format="json")
    assert (ok.status_code, ok.json()["failures_before_critical"]) == (200, 5)
    for bad in (
        {"failures_before_critical": 0},
        {"status": "passing"},
        {"flap": {"window": -1, "max_transitions": 2}},
    ):
        response = writer.patch(f"/api/v1/monitor/checks/{check.pk}/", bad, format="json")
        assert response.status_code == 400, bad
    assert Check.objects.get(pk=check.pk).failures_before_critical == 5


def test_jobs__create__conflict__bad_schedule(writer):
    made = writer.post(
        "/api/v1/monitor/checks/", {"service": "backups", "name": "nightly", "interval": 86400}, format="json"
    )
    assert made.status_code == 201, made.content
    again = writer.post("/api/v1/monitor/checks/", {"service": "backups", "name": "nightly"}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "check_exists")
    for schedule in ("99 * * * *", "0 0 31 2 *"):  # not cron; well formed but no such date
        cron = {"service": "backups", "name": "c", "kind": "cron", "schedule": schedule}
        assert (
            writer.post("/api/v1/monitor/checks/", cron, format="json").json()["error"]["code"]
            == "invalid_schedule"
        ), schedule
    leap = {"service": "backups", "name": "c", "kind": "cron", "schedule": "0 0 29 2 *"}
    assert writer.post("/api/v1/monitor/checks/", leap, format="json").status_code == 201
    zone = {
        "service": "backups",
        "name": "z",
        "kind": "cron",
        "schedule": "0 3 * * *",
        "timezone": "Mars/Base",
    }
    assert (
        writer.post("/api/v1/monitor/checks/", zone, format="json").json()["error"]["code"]
        == "invalid_timezone"
    )


@pytest.mark.parametrize("extra", [{"schedule": "* * * * *"}, {"timezone": "Europe/Paris"}])
def test_jobs__create__a_schedule_for_a_period_job__400_not_dropped(writer, extra):
    body = {"service": "backups", "name": "p", "kind": "period", "interval": 60, **extra}
    response = writer.post("/api/v1/monitor/checks/", body, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_schedule")
    assert not Check.objects.filter(name="p").exists()


def test_maintenance__open_and_end(writer, report):
    report("orders", "n1", result("db", "passing"))
    opened = writer.post(
        "/api/v1/monitor/maintenance/",
        {"service": "orders", "ends": "2099-01-01T00:00:00Z", "reason": "upgrade"},
        format="json",
    )
    assert opened.status_code == 201, opened.content
    window = Maintenance.objects.get()
    assert writer.get("/api/v1/monitor/services/orders/").json()["in_maintenance"] is True
    assert writer.delete(f"/api/v1/monitor/maintenance/{window.pk}/").status_code == 200
    assert writer.get("/api/v1/monitor/services/orders/").json()["in_maintenance"] is False
    bad = writer.post(
        "/api/v1/monitor/maintenance/", {"service": "orders", "ends": "2000-01-01T00:00:00Z"}, format="json"
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_window")
    # a service the monitor does not know (a typo) would be silenced for nothing
    typo = writer.post(
        "/api/v1/monitor/maintenance/", {"service": "ordres", "ends": "2099-01-01T00:00:00Z"}, format="json"
    )
    assert (typo.status_code, typo.json()["error"]["code"]) == (400, "service_not_found")
    assert Maintenance.objects.count() == 1


def test_keys__need_write__created_for_a_service(reader, writer):
    assert reader.get("/api/v1/monitor/keys/").status_code == 403
    made = writer.post("/api/v1/monitor/keys/", {"service": "backups"}, format="json")
    assert made.status_code == 201
    assert PingKey.objects.get().key == made.json()["key"]


def test_flips__fleet_timeline_filter_by_service(reader, report):
    report("orders", "n1", result("db", "passing"))
    report("billing", "b1", result("db", "passing"))

    flips = reader.get("/api/v1/monitor/flips/?service=orders").json()["results"]
    assert {f["service"] for f in flips} == {"orders"}
    assert Flip.objects.count() > len(flips)
    assert reader.get("/api/v1/monitor/flips/?alerted=false").json()["results"]
    for odd in ("maybe", "1", "yes"):  # django-filter alone reads these as "no filter"
        refused = reader.get(f"/api/v1/monitor/flips/?alerted={odd}")
        assert (refused.status_code, refused.json()["error"]["details"]) == (
            400,
            {"alerted": ["true or false."]},
        )


def test_service_flips__take_the_flip_filters(reader, report):
    report("orders", "n1", result("db", "passing"))
    path = "/api/v1/monitor/services/orders/flips/"
    assert reader.get(path).json()["results"]
    assert reader.get(f"{path}?alerted=true").json()["results"] == []
    refused = reader.get(f"{path}?alerted=maybe")
    assert (refused.status_code, refused.json()["error"]["details"]) == (400, {"alerted": ["true or false."]})


def test_a_number_too_large_for_a_float__400_naming_the_field(writer, report):
    """``1e999`` is valid JSON that Python reads as infinity: a whole-number field refuses it."""
    report("orders", "n1", result("db", "passing"))
    check = Check.objects.get(name="db")

    patched = writer.patch(
        f"/api/v1/monitor/checks/{check.pk}/", '{"ttl": 1e999}', content_type="application/json"
    )
    made = writer.post(
        "/api/v1/monitor/checks/",
        '{"service": "backups", "name": "j", "kind": "period", "interval": 1e999}',
        content_type="application/json",
    )

    assert (patched.status_code, patched.json()["error"]["code"]) == (400, "invalid_report")
    assert (made.status_code, made.json()["error"]["code"]) == (400, "invalid_report")
    assert Check.objects.get(pk=check.pk).ttl == check.ttl
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(Invalid) as refused:
            services.parse_report(
                {"service": "orders", "node": "n1", "checks": [result("db", "passing", interval=value)]}
            )
        assert refused.value.details == {"report.checks[0].interval": "A whole number."}


def test_service_settings__an_unknown_service__404_and_nothing_made(writer, reader, report):
    response = writer.patch("/api/v1/monitor/services/nope/", {"min_share": 0.8}, format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "service_not_found")
    assert "nope" not in [s["name"] for s in reader.get("/api/v1/monitor/services/").json()["results"]]
    report("orders", "n1", result("db", "passing"))
    assert (
        writer.patch("/api/v1/monitor/services/orders/", {"min_share": 0.8}, format="json").status_code == 200
    )
