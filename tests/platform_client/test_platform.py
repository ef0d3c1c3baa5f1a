"""``Platform``: one entry point from the environment, modules made on first use over one session
and one scheduler, and a clean shutdown that leaves no thread running."""

from __future__ import annotations

import threading
import time
from unittest import mock
from urllib.parse import urlsplit

import pytest

from platform_client import Platform, PlatformError, PlatformSession
from platform_client.scheduler import Scheduler
from tests.platform_client.tcp_proxy import Proxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(live_server, service_account, monkeypatch):
    client_id, secret = service_account(
        "auth:read", "discovery:read", "discovery:write", "events:read", "events:write", "trace:write"
    )
    for name, value in {
        "PLATFORM_URL": live_server.url,
        "PLATFORM_CLIENT_ID": client_id,
        "PLATFORM_CLIENT_SECRET": secret,
        "PLATFORM_SERVICE_NAME": "orders",
        "PLATFORM_SERVICE_VERSION": "2.1.0",
        "PLATFORM_KV_URL": "memory://",
        "PLATFORM_SYNC_URL": "memory://",
    }.items():
        monkeypatch.setenv(name, value)
    return live_server


def test_from_env__modules_share_one_session_and_are_made_on_first_use(env):
    with Platform.from_env() as p:
        assert (p.service, p.version, str(p.session.base_url)) == ("orders", "2.1.0", env.url)
        assert p.started == []
        assert p.discovery.session is p.session and p.events.session is p.session
        assert p.router.discovery is p.discovery
        assert p.sync.scheduler is p.scheduler
        assert p.kv is p.kv
        assert p.started == ["discovery", "events", "router", "sync", "kv"]


def test_modules_work_through_the_entry_point(env):
    with Platform.from_env(node="orders-1") as p:
        assert p.auth.check("config:x", "read")["allowed"] is False  # a real policy answer
        registration = p.register("10.0.0.7", 8080)
        assert registration.node_id == "orders-1"
        assert registration.registrations == 1  # registered once, one heartbeat thread
        assert [t.name for t in threading.enumerate()].count("discovery-heartbeat-orders-1") == 1
        assert [node["id"] for node in p.discovery.nodes("orders")] == ["orders-1"]
        p.events.publish("orders.created", {"id": 7})
        assert p.events.flush(timeout=10)
        p.kv.put("cart", "3")
        assert p.kv.get("cart") == b"3" and p.kv.prefix == "orders:"
        with p.sync.lock("report", ttl=5) as held:
            assert held.fence == 1
    with Platform.from_env() as q:  # deregistered on close: a fresh look-up finds nobody
        try:
            nodes = q.discovery.nodes("orders")
        except PlatformError as exc:
            assert exc.status == 404
            nodes = []
        assert nodes == []


def test_close__stops_every_thread_it_started(env):
    before = set(threading.enumerate())
    p = Platform.from_env()
    p.scheduler.every(0.01, lambda: None)
    with p.sync.lock("held", ttl=5):
        p.events.publish("orders.created", {"id": 1})
        p.close()
    assert p.scheduler.alive is False
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(5)
    assert [t.name for t in leftover if t.is_alive()] == []
    with pytest.raises(RuntimeError, match="closed"):
        _ = p.config


def test_close__sends_the_spans_still_queued_and_ends_the_exporters_thread(env):
    from trace_app.models import Span

    before = set(threading.enumerate())
    with Platform.from_env() as p:
        tracer = p.trace.setup().get_tracer("tests")  # batched: nothing sent yet
        for name in ("a", "b", "c"):
            with tracer.start_as_current_span(name):
                pass
    assert sorted(Span.objects.filter(service="orders").values_list("name", flat=True)) == ["a", "b", "c"]
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not [t.name for t in leftover if "Span" in t.name]


def test_close__platform_hung__returns_within_its_timeout(env):
    target = urlsplit(env.url)
    proxy = Proxy((target.hostname, target.port))
    p = Platform.from_env(url=f"http://127.0.0.1:{proxy.port}")
    try:
        p.register("10.0.0.7", 8080)
        p.monitor.start()
        p.events.publish("orders.created", {"id": 1})
        assert p.events.flush(timeout=10)
        p.sync.lock("held", ttl=5).acquire()
        p.events.publish("orders.created", {"id": 2})  # never delivered
        proxy.freeze()  # the platform hangs, as under SIGSTOP: connections stay open, nothing answers
        started = time.monotonic()
        p.close(timeout=2)
        assert time.monotonic() - started < 2 + 2  # was 30 s: each part waited 5 or 10 s for itself
        assert not p.scheduler.alive and not p.sync._leases.alive
    finally:
        proxy.close()


def test_close__timeout_is_a_number_of_seconds(env):
    p = Platform.from_env()
    with pytest.raises(ValueError, match="timeout"):
        p.close(timeout=-1)
    p.close(timeout=0)  # nothing was started: nothing to wait for


def test_from_env__missing_service_or_credentials(env, monkeypatch):
    monkeypatch.delenv("PLATFORM_SERVICE_NAME")
    close = PlatformSession.close
    with (
        mock.patch.object(PlatformSession, "close", autospec=True, side_effect=close) as closing,
        pytest.raises(ValueError, match="service name"),
    ):
        Platform.from_env()
    assert closing.call_count == 1  # the session made for it is not left open
    monkeypatch.delenv("PLATFORM_CLIENT_SECRET")
    with pytest.raises(ValueError, match="client_secret"):
        Platform.from_env(service="x")


def test_from_env__log_events_flag_spellings_and_the_keyword_wins(env, monkeypatch):
    for value, expected in (("yes", True), ("TRUE", True), ("0", False), ("", False)):
        monkeypatch.setenv("PLATFORM_LOG_EVENTS", value)
        with Platform.from_env() as p:
            assert p.log_events is expected, value
    monkeypatch.setenv("PLATFORM_LOG_EVENTS", "1")
    with Platform.from_env(log_events=False) as p:
        assert p.log_events is False
    monkeypatch.setenv("PLATFORM_LOG_EVENTS", "ture")
    with pytest.raises(ValueError, match="PLATFORM_LOG_EVENTS"):
        Platform.from_env()


def test_from_env__an_unknown_kv_or_sync_scheme_names_the_variable_not_the_password(env, monkeypatch):
    monkeypatch.setenv("PLATFORM_KV_URL", "redis2://:hunter2@cache:6379/0")
    monkeypatch.setenv("PLATFORM_SYNC_URL", "postgress://app:hunter2@db/app")
    with Platform.from_env() as p:
        with pytest.raises(ValueError, match="PLATFORM_KV_URL") as kv_error:
            _ = p.kv
        with pytest.raises(ValueError, match="PLATFORM_SYNC_URL") as sync_error:
            _ = p.sync
    assert "'redis2://:***@cache:6379/0'" in str(kv_error.value)
    assert "'postgress://app:***@db/app'" in str(sync_error.value)
    assert "hunter2" not in str(kv_error.value) + str(sync_error.value)


def test_wrong_credentials__the_first_call_names_the_cause(env):
    with Platform.from_env(client_secret="wrong") as p, pytest.raises(PlatformError) as raised:
        p.auth.check("config:x", "read")
    assert raised.value.status == 401 and raised.value.code == "invalid_client"
    assert "PLATFORM_CLIENT_SECRET" in str(raised.value)


def test_scheduler__a_failing_job_runs_again_and_others_keep_running():
    scheduler = Scheduler()
    ran = threading.Event()
    calls = {"bad": 0}

    def bad():
        calls["bad"] += 1
        raise RuntimeError("boom")

    failing = scheduler.every(0.01, bad, now=True)
    scheduler.every(0.01, ran.set)
    assert ran.wait(5)
    while failing.failures < 2:
        ran.clear()
        assert ran.wait(5)
    scheduler.close()
    assert calls["bad"] >= 2 and not scheduler.alive
    with pytest.raises(RuntimeError, match="closed"):
        scheduler.every(1, bad)


@pytest.mark.parametrize(
    ("interval", "error"), [(0, ValueError), (float("nan"), ValueError), ("1", TypeError)]
)
def test_scheduler__an_interval_that_is_not_a_positive_number__refused(interval, error):
    # NaN was taken (NaN <= 0 is false) and the job's next time never came
    scheduler = Scheduler()
    with pytest.raises(error, match="interval"):
        scheduler.every(interval, lambda: None)
    scheduler.close()


def test_log_and_metrics_through_the_entry_point(env, tmp_path, monkeypatch):
    import structlog

    monkeypatch.setenv("PLATFORM_LOG_FILE", str(tmp_path / "orders.jsonl"))
    monkeypatch.setenv("PLATFORM_LOG_EVENTS", "1")
    try:
        with Platform.from_env(node="orders-9") as p:
            p.log.warning("stock low", sku="A7")
            p.metrics.counter("orders_total").inc()
            assert b"orders_total 1.0" in p.metrics.render()[0]
            from platform_client import log

            assert log.shipper().shipped == 1
            assert p.events.flush(timeout=10) and p.events.pending == 0  # stored by the platform
        lines = (tmp_path / "orders.jsonl").read_text().splitlines()
        record = [line for line in lines if "stock low" in line]
        assert '"node": "orders-9"' in record[0] and '"service": "orders"' in record[0]
    finally:
        structlog.reset_defaults()


def test_unreachable_platform__clear_error_no_thread_left(monkeypatch):
    import httpx

    before = set(threading.enumerate())
    monkeypatch.setenv("PLATFORM_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("PLATFORM_CLIENT_ID", "x")
    monkeypatch.setenv("PLATFORM_CLIENT_SECRET", "y")
    p = Platform.from_env(service="orders")
    with pytest.raises(httpx.ConnectError):
        p.register("10.0.0.7", 8080)
    p.events.publish("orders.created", {"id": 1})  # buffered: the publisher retries in the background
    assert p.events.pending == 1
    with p.sync.lock("local", ttl=5) as held:  # memory:// needs no platform
        assert held.fence == 1
    p.close()
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(5)
    assert [t.name for t in leftover if t.is_alive()] == []
