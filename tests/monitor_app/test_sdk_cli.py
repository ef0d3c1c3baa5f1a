"""platform_client.monitor and ``platform monitor ...`` against a live platform."""

from __future__ import annotations

import json
import sys
import time

import pytest

from monitor_app import services
from monitor_app.models import Check, Maintenance, NodeStatus, Ping, StatSample
from monitor_app.services import jobs
from platform_client import monitor as sdk
from platform_client.session import PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(live_server, service_account):
    client_id, secret = service_account("monitor:read", "monitor:write")
    with PlatformSession(live_server.url, client_id, secret) as session:
        yield session


def test_judge_http__as_consul_does():
    assert [sdk.judge_http(code) for code in (200, 204, 429, 500, 404, None)] == [
        "passing",
        "passing",
        "warning",
        "critical",
        "critical",
        "critical",
    ]


def test_outcome__each_answer_a_check_may_give():
    assert sdk.outcome(True) == ("passing", "")
    assert sdk.outcome(("warning", "slow")) == ("warning", "slow")
    assert sdk.outcome("critical") == ("critical", "")
    assert sdk.outcome(42)[0] == "critical"


def test_monitor__checks_status_and_stats_reported(session, live_server):
    def broken():
        raise RuntimeError("no database")

    def hangs():
        time.sleep(2)
        return True

    monitor = sdk.Monitor(session, "orders", node="orders-1")
    monitor.register_check("ok", lambda: ("passing", "fine"), 10)
    monitor.register_check("db", broken, 10, failures_before_critical=1)
    monitor.register_check("slow", hangs, 10, timeout=0.2)
    monitor.http_check("self", f"{live_server.url}/healthz", 10)
    app = monitor.middleware(lambda environ, start: start("500 Oops", []) or [b""])
    app({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, lambda status, headers: None)
    monitor.set_status("RUNNING", version="1.0")

    answer = monitor.report()

    states = {c["name"]: c["status"] for c in answer["checks"]}
    assert states == {"ok": "passing", "db": "critical", "slow": "critical", "self": "passing"}
    assert Check.objects.get(name="slow").output.startswith("timed out")
    assert Check.objects.get(name="db").output == "RuntimeError: no database"
    status = NodeStatus.objects.get(node="orders-1")
    assert status.status == "running" and status.info["version"] == "1.0" and "gc" in status.info
    sample = StatSample.objects.get(node="orders-1")
    assert (sample.errors, sample.endpoints[0]["method"]) == (1, "GET /x")
    assert sample.memory and sample.threads


def test_monitor__importable_without_psutil(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError

    stats = sdk.process_stats()

    assert stats["threads"] >= 1


def test_ping_context_manager__start_then_exit_status(live_server):
    job = services.job_create(service="backups", name="nightly", fields={})

    with sdk.ping(str(job.pk), live_server.url):
        pass
    with pytest.raises(ValueError), sdk.ping(str(job.pk), live_server.url):
        raise ValueError("disk full")

    kinds = list(Ping.objects.order_by("id").values_list("kind", "exit_status"))
    assert kinds == [("start", None), ("success", 0), ("start", None), ("fail", 1)]
    failed = Ping.objects.filter(kind="fail").get()
    assert "disk full" in failed.body and failed.duration is not None
    assert Check.objects.get(pk=job.pk).status == "critical"


@pytest.fixture
def cli(cli_as):
    return cli_as("monitor", "monitor:read", "monitor:write")


def test_cli__services_checks_history_silence(cli, session, capsys):
    sdk.Monitor(session, "orders", node="orders-1").report()  # a node with no checks yet
    session.call(
        "POST",
        "/api/v1/monitor/reports/",
        json={"service": "orders", "node": "orders-1", "checks": [{"name": "db", "status": "critical"}]},
    )
    code, listed, _ = cli("services")
    assert code == 0 and [(s["name"], s["status"]) for s in listed] == [("orders", "degraded")]
    code, checks, _ = cli("checks", "--status", "critical")
    assert [c["name"] for c in checks] == ["db"]
    code, history, _ = cli("history", "orders")
    assert code == 0 and history["flips"][0]["new"] == "degraded" and len(history["uptime"]) == 3
    code, window, _ = cli("silence", "orders", "--for", "30", "--reason", "upgrade")
    assert code == 0 and window["id"] == Maintenance.objects.get(reason="upgrade").pk
    code, _, err = cli("services", "nope")
    assert code == 1 and json.loads(err)["error"]["status"] == 404
    for minutes in ("99999999999999999999", "abc"):
        with pytest.raises(SystemExit) as refused:
            cli("silence", "orders", "--for", minutes)
        assert refused.value.code == 2
    assert "whole minutes, got 'abc'" in capsys.readouterr().err


def test_cli__ping_needs_no_credentials(cli, monkeypatch):
    job = services.job_create(service="backups", name="nightly", fields={})
    monkeypatch.delenv("PLATFORM_CLIENT_ID")
    monkeypatch.delenv("PLATFORM_CLIENT_SECRET")

    code, out, _ = cli("ping", str(job.pk), "start")
    assert (code, out) == (0, "OK")
    code, _, err = cli("ping", str(job.pk), "300")
    assert (code, json.loads(err)["error"]["code"]) == (2, "invalid_input")
    code, _, err = cli("ping", str(job.pk), "banana")  # not sent: the URL would read as a wrong key
    assert (code, json.loads(err)["error"]["code"]) == (2, "invalid_input") and "banana" in err
    code, _, err = cli("ping", "00000000-0000-4000-8000-000000000000")
    error = json.loads(err)["error"]
    assert (code, error["status"], error["code"]) == (1, 404, "check_not_found")  # the platform's own


def test_cli__ping_that_creates_the_job__success(cli, monkeypatch):
    key = services.key_create(service="backups")
    monkeypatch.delenv("PLATFORM_CLIENT_ID")
    monkeypatch.delenv("PLATFORM_CLIENT_SECRET")

    assert cli("ping", f"{key.key}/weekly?create=1")[:2] == (0, "Created")  # 201, as Healthchecks.io
    assert cli("ping", f"{key.key}/weekly")[:2] == (0, "OK")


def test_register_check__an_unknown_keyword__type_error_not_every_report_refused():
    monitor = sdk.Monitor(None, service="orders", node="n1")
    with pytest.raises(TypeError, match="intervall"):
        monitor.register_check("db", lambda: "passing", 10, intervall=30)
    assert monitor.checks == {}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"interval": 0}, ValueError),
        ({"interval": -1}, ValueError),
        ({"interval": float("nan")}, ValueError),
        ({"interval": "10"}, TypeError),
        ({"interval": 10, "timeout": 0}, ValueError),
    ],
)
def test_register_check__an_interval_or_timeout_that_is_not_a_positive_number__refused(options, error):
    # an interval of 0 or less made the reporting thread wait 0 s between rounds: it spun
    monitor = sdk.Monitor(None, service="orders", node="n1")
    with pytest.raises(error, match=r"interval|timeout"):
        monitor.register_check("db", lambda: "passing", **options)
    assert monitor.checks == {}
    if "timeout" not in options:
        with pytest.raises(error, match="interval"):
            sdk.Monitor(None, service="orders", interval=options["interval"])


def test_set_status__a_status_the_monitor_refuses__value_error_not_every_report_refused():
    monitor = sdk.Monitor(None, service="orders", node="n1")
    monitor.set_status("running", version="1.2")
    with pytest.raises(ValueError, match="UNKNOWN, STARTED, RUNNING, STOPPED"):
        monitor.set_status("UP")
    assert monitor.status == {"status": "running", "info": {"version": "1.2"}}


def test_ping_key__never_starts_with_a_dash_a_command_line_reads_as_an_option(monkeypatch):
    drawn = iter(["-k" * 16, "k-" * 16])
    monkeypatch.setattr(jobs.secrets, "token_urlsafe", lambda size: next(drawn))
    assert services.key_create(service="backups").key == "k-" * 16


@pytest.mark.parametrize(
    ("status", "kept"), [(401, True), (403, True), (429, True), (503, True), (400, False)]
)
def test_report_refused__the_counts_are_kept_unless_the_report_itself_was(status, kept):
    # a 401 (an account disabled for a while) threw the period's counts away
    from platform_client.session import PlatformError

    class Refusing:
        def call(self, *args, **kwargs):
            raise PlatformError(status, "refused", "no")

    monitor = sdk.Monitor(Refusing(), service="orders", node="n1")
    monitor.endpoints.count("GET /orders", "success", 7)
    with pytest.raises(PlatformError):
        monitor._report()
    left = monitor.endpoints.take()
    assert (left == [{"method": "GET /orders", "success": 7, "errors": 0, "dropped": 0}]) is kept
