"""The hot route of a node's report of unchanged results (monitor_app.hot.report)."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from monitor_app import hot
from monitor_app.models import Check
from monitor_app.services.ingest import report_key
from tests.hotpath import Driver

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: the snapshots are cached

REPORTS = "/api/v1/monitor/reports/"


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("monitor:read", "monitor:write")


def body(status: str = "passing", output: str = "ok", **report: object) -> bytes:
    checks = [{"name": f"c{i}", "status": status, "output": output, "interval": 10} for i in range(3)]
    return json.dumps({"service": "orders", "node": "n1", "checks": checks, **report}).encode()


def send(driver: Driver, token: str, data: bytes, content_type: str = "application/json"):
    return driver.call("POST", REPORTS, token, data=data, content_type=content_type)


def steady(driver: Driver, token: str):
    """Reports until the checks are steady (created, counters at their caps): the last full answer."""
    replies = [send(driver, token, body()) for _ in range(3)]
    assert [reply.hot for reply in replies[:2]] == [False, False]
    assert [reply.status for reply in replies] == [200, 200, 200]
    return replies[-1]


def test_unchanged_report__hot_answer_is_the_full_views(driver, token):
    steady(driver, token)
    full = Driver([]).call("POST", REPORTS, token, data=body(), content_type="application/json")

    reply = send(driver, token, body())

    assert reply.hot and not full.hot
    assert reply.comparable() == full.comparable()
    assert [check["status"] for check in reply.json()["checks"]] == ["passing"] * 3


def test_unchanged_report__no_database_query__last_result_cached(driver, token, django_assert_num_queries):
    steady(driver, token)
    versions = sorted(Check.objects.values_list("version", flat=True))

    with django_assert_num_queries(0):
        assert send(driver, token, body(output="still ok")).hot

    check = Check.objects.get(name="c0")
    assert cache.get(report_key(check.pk))[2] == "still ok"
    assert sorted(Check.objects.values_list("version", flat=True)) == versions


def test_failing_result__full_view(driver, token):
    steady(driver, token)

    reply = send(driver, token, body(status="critical"))

    assert (reply.hot, reply.status) == (False, 200)
    assert Check.objects.get(name="c0").failures == 1


def test_new_check__full_view(driver, token):
    steady(driver, token)
    data = json.loads(body())
    data["checks"].append({"name": "new", "status": "passing"})

    reply = send(driver, token, json.dumps(data).encode())

    assert (reply.hot, reply.status) == (False, 200)
    assert Check.objects.filter(name="new").exists()


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (body(status={"no": 1}), "application/json"),  # type: ignore[arg-type]
        (b'{"service": "orders", "node": "n1", "checks": [], "x": NaN}', "application/json"),
        (b"not json", "application/json"),
        (body(), "text/plain"),
    ],
)
def test_bad_input__the_full_views_4xx(driver, token, data, content_type):
    steady(driver, token)

    reply = send(driver, token, data, content_type)

    assert not reply.hot and 400 <= reply.status < 500


@pytest.mark.parametrize(
    ("checks", "field"),
    [
        ({}, "report.checks"),
        (None, "report.checks"),
        ([{"name": "c0", "status": "passing", "error": 5}], "report.checks[0].error"),
        ([{"name": "c0", "status": "passing", "output": [], "error": "x"}], "report.checks[0].output"),
    ],
)
def test_checks_of_another_type__the_full_views_400_naming_the_field(driver, token, checks, field):
    steady(driver, token)
    data = json.dumps({"service": "orders", "node": "n1", "checks": checks}).encode()

    reply = send(driver, token, data)
    full = Driver([]).call("POST", REPORTS, token, data=data, content_type="application/json")

    assert (reply.hot, reply.status) == (False, 400)
    assert reply.comparable() == full.comparable()
    assert reply.json()["error"]["code"] == "invalid_report"
    assert list(reply.json()["error"]["details"]) == [field]


@pytest.mark.parametrize("extra", [{"status": {"status": "running"}}, {"stats": {"cpu": 0.5}}])
def test_status_or_stats__full_view(driver, token, extra):
    steady(driver, token)

    reply = send(driver, token, json.dumps({**json.loads(body()), **extra}).encode())

    assert (reply.hot, reply.status) == (False, 200)


def test_missing_scope_or_outsider__refused_by_the_full_view(driver, token, issue_token):
    steady(driver, token)

    reader = send(driver, issue_token("monitor:read"), body())
    outsider = send(driver, issue_token(), body())

    assert [(reader.hot, reader.status), (outsider.hot, outsider.status)] == [(False, 403), (False, 403)]


def test_unchanged_report__a_snapshot_this_process_could_not_store__full_view_drops_it_first(driver, token):
    # given: a snapshot whose write failed after a commit (Redis down then): the one Redis holds
    # may be older than the row
    from monitor_app.services import ingest

    steady(driver, token)
    key = ingest.snapshot_key("orders", "n1", "c0")
    ingest._unsure.add(key)
    cache.set(key, {**cache.get(key), "status": "critical"})  # what an older copy could say
    # when
    reply = send(driver, token, body())
    # then the full view dropped it before reading, and compared the result with the row
    assert (reply.hot, reply.status) == (False, 200)
    assert [check["status"] for check in reply.json()["checks"]] == ["passing"] * 3
    assert not ingest._unsure
    assert cache.get(key)["status"] == "passing"  # read again from the row
