"""The SDK's background watchers against a misbehaving or refusing platform (no Django server):
no busy loops, no repeated callbacks, no reconnect storms, one watcher thread."""

from __future__ import annotations

import json
import threading
import time
from unittest import mock

import httpx
import pytest
from websockets.sync.server import serve

from platform_client import PlatformSession
from platform_client.discovery import Discovery
from platform_client.event import Subscription
from platform_client.monitor import Monitor
from platform_client.session import PlatformError


class FakeSession:
    """What Discovery uses of a PlatformSession: a service that is gone (404) with its history."""

    base_url = "http://platform.invalid"
    timeout = 5.0
    is_closed = False

    def __init__(self, history: list[dict]) -> None:
        self.history = history
        self.requests = 0

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        self.requests += 1
        return httpx.Response(404, json={"error": {"code": "not_found"}})

    def call(self, method: str, url: str, params: dict | None = None, **kwargs) -> dict:
        """One result a page: the next link carries the query, as the platform's cursor does."""
        since = params["since"] if params else int(url.rpartition("since=")[2])
        after = [r for r in self.history if r["index"] > since]
        more = f"http://platform.invalid/next?since={after[0]['index']}" if len(after) > 1 else None
        return {"results": after[:1], "next": more}


def test_discovery_blocking_watch__service_gone__tells_each_change_once_and_waits():
    # given a watched service whose nodes are all gone (404 without an index)
    session = FakeSession([{"action": "delete", "service": "billing", "index": 7}])
    discovery = Discovery(session, use_websocket=False, wait_seconds=1.0)
    told: list[dict] = []
    discovery._callbacks.append(told.append)
    discovery._watched.add("billing")
    discovery._indexes["billing"] = 3  # looked up before its nodes went
    # when two blocking rounds run
    started = time.monotonic()
    discovery._blocking_round()
    discovery._blocking_round()
    # then the removal was told once, and the second round waited instead of spinning
    assert told == [{"action": "delete", "service": "billing", "index": 7}]
    assert session.requests == 2
    assert time.monotonic() - started >= 0.9


def test_discovery_watch__many_first_lookups_at_once__start_one_watcher():
    discovery = Discovery(FakeSession([]), use_websocket=False)
    barrier = threading.Barrier(8)

    def look_up(i: int) -> None:
        barrier.wait()
        discovery._watch_names([f"svc-{i}"])

    real_thread = threading.Thread

    def slow_thread(*args, **kwargs):  # widen the window between the check and the assignment
        time.sleep(0.05)
        return real_thread(*args, **kwargs)

    with (
        mock.patch.object(Discovery, "_run", lambda self: time.sleep(0.5)),
        mock.patch("platform_client.discovery.threading.Thread", side_effect=slow_thread),
    ):
        threads = [real_thread(target=look_up, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        watchers = [t for t in threading.enumerate() if t.name == "discovery-watch"]
    assert len(watchers) == 1


@pytest.fixture
def ws_platform():
    """A websocket server on 127.0.0.1 playing the platform's /ws/events/ with ``script``."""
    servers = []

    def start(script):
        connections: list[str] = []

        def handler(connection):
            connections.append(connection.request.path)
            script(connection)

        server = serve(handler, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port = server.socket.getsockname()[1]
        session = PlatformSession(f"http://127.0.0.1:{port}", "id", "secret")
        session.credentials.token = lambda force=False: "token"
        return session, connections

    yield start
    for server in servers:
        server.shutdown()


def test_event_subscription__refused__stops_instead_of_reconnecting(ws_platform):
    def refuse(connection):
        connection.send(json.dumps({"type": "error", "code": "policy_denied", "message": "no"}))
        connection.close(4403, "forbidden")

    session, connections = ws_platform(refuse)
    subscription = Subscription(session, lambda event: None, types=["order.*"])
    subscription._thread.join(3)
    assert not subscription._thread.is_alive()
    assert len(connections) == 1
    assert "policy_denied" in subscription.last_error


def test_event_subscription__handler_fails__event_is_skipped_not_replayed_forever(ws_platform):
    def one_event(connection):
        connection.send(json.dumps({"type": "subscribed"}))
        connection.send(json.dumps({"type": "event", "event": {"id": 1, "type": "order.a"}}))
        connection.send(json.dumps({"type": "event", "event": {"id": 2, "type": "order.b"}}))
        time.sleep(1.0)

    handled: list[int] = []

    def handler(event):
        handled.append(event["id"])
        if event["id"] == 1:
            raise RuntimeError("the handler's own bug")

    session, connections = ws_platform(one_event)
    subscription = Subscription(session, handler)
    time.sleep(0.6)
    subscription.stop()
    assert handled == [1, 2]
    assert subscription.failed == 1 and subscription.last_event_id == 2
    assert len(connections) == 1


def test_session__websocket_url__follows_ws_url(monkeypatch):
    monkeypatch.delenv("PLATFORM_WS_URL", raising=False)
    plain = PlatformSession("https://platform.example.com/base", "id", "secret")
    split = PlatformSession("http://127.0.0.1:8000", "id", "secret", ws_url="ws://127.0.0.1:8001")
    assert plain.websocket_url("/ws/events/") == "wss://platform.example.com/base/ws/events/"
    assert split.websocket_url("/ws/events/") == "ws://127.0.0.1:8001/ws/events/"


def test_event_publisher__session_fails_unexpectedly__keeps_the_events_and_reports_them_on_close():
    # given a session that raises something other than a network error (here: it was closed)
    from platform_client.event import EventPublisher

    class ClosedSession:
        def post(self, *args, **kwargs):
            raise RuntimeError("Cannot send a request, as the client has been closed.")

    dropped: list[tuple[int, str]] = []
    publisher = EventPublisher(
        ClosedSession(),
        source="/svc",
        flush_interval=0.01,
        retry_initial=0.01,
        on_drop=lambda events, reason: dropped.append((len(events), reason)),
    )
    publisher.publish("order.created", {"n": 1})
    publisher.publish("order.created", {"n": 2})
    # when it has tried for a while
    assert publisher.flush(timeout=0.3) is False
    # then the thread is alive, the events wait, and closing reports them instead of losing them
    assert publisher._thread.is_alive() and publisher.pending == 2
    assert "RuntimeError" in publisher.last_error
    assert publisher.close(timeout=0.1) is False
    assert dropped == [(2, "closed")]


def test_event_publisher__a_refusal_with_retry_after__is_not_sent_again_before_it():
    from platform_client.event import EventPublisher

    sent: list[float] = []

    class Throttling:
        def post(self, url, **kwargs):
            sent.append(time.monotonic())
            if len(sent) == 1:
                return httpx.Response(429, headers={"Retry-After": "0.5"}, json={"error": {}})
            return httpx.Response(202, json={})

    publisher = EventPublisher(Throttling(), source="/svc", flush_interval=0.01, retry_initial=0.01)
    publisher.publish("order.created", {"n": 1})
    assert publisher.flush(timeout=5)
    publisher.close()
    # the backoff alone would have sent it again after 0.01 s
    assert len(sent) == 2 and sent[1] - sent[0] >= 0.5


def test_event_publisher__closed_while_backing_off__stops_at_once_and_reports_the_events(caplog):
    # given a platform that cannot be reached and a publisher in a long backoff between tries
    from platform_client.event import EventPublisher

    class Unreachable:
        def post(self, url, **kwargs):
            raise httpx.ConnectError(f"POST {url}: [Errno 111] Connection refused")

    publisher = EventPublisher(Unreachable(), source="/svc", flush_interval=0.01, retry_initial=3600)
    publisher.publish("order.created", {"n": 1})
    assert publisher.flush(timeout=0.3) is False and publisher.last_error
    # when it is closed
    with caplog.at_level("ERROR", logger="platform_client.event"):
        assert publisher.close(timeout=0) is False
        # then no thread is left behind, and the event is reported as not delivered, not as refused
        assert not publisher._thread.is_alive()
    assert "1 event(s) not delivered before the publisher closed" in caplog.text
    assert "platform refused" not in caplog.text


def test_event_subscription__dropped_before_its_first_event__resumes_from_where_it_subscribed(ws_platform):
    def subscribed_then_drop(connection):
        connection.send(json.dumps({"type": "subscribed", "last_event_id": None, "latest_event_id": 41}))
        connection.close()

    session, connections = ws_platform(subscribed_then_drop)
    subscription = Subscription(session, lambda event: None)
    deadline = time.monotonic() + 3
    while len(connections) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    subscription.stop()
    assert "last_event_id" not in connections[0]
    assert "last_event_id=41" in connections[1]


def test_discovery_websocket_watch__resubscribes_with_since_and_tells_each_change_once(ws_platform):
    # given a platform that replays a missed change, then pushes the same change live
    received: list[dict] = []
    change = {"action": "create", "service": "orders", "index": 5, "node": {"id": "n2"}}

    def platform(connection):
        connection.send(json.dumps({"type": "hello"}))
        received.append(json.loads(connection.recv(timeout=5)))
        connection.send(json.dumps({"type": "subscribed", "services": ["orders"], "indexes": {}}))
        connection.send(json.dumps({"type": "replay", "result": change}))
        connection.send(json.dumps({"type": "change", "service": "orders", "index": 5, "results": [change]}))
        time.sleep(1.0)

    session, _ = ws_platform(platform)
    discovery = Discovery(session)
    discovery._indexes["orders"] = 3  # what the cache held when the connection was (re)made
    told: list[dict] = []
    discovery.watch(told.append, services=["orders"])
    deadline = time.monotonic() + 3
    while not told and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    discovery.close()
    # then it asked for what it missed, and the callback heard the change once
    assert received[0]["since"] == {"orders": 3}
    assert told == [change]


def test_config_watch__websocket_refused_once__is_tried_again_after_long_polling(tmp_path, monkeypatch):
    # given a platform whose websocket handshake fails (say a 502 during a restart)
    from platform_client import config

    monkeypatch.setattr(config, "WEBSOCKET_RETRY_SECONDS", 0.05)
    source = config.PlatformSource("payments", "production", session=object(), cache_dir=tmp_path)
    stop = threading.Event()
    attempts: list[str] = []

    def websocket(on_change, stop_event):
        attempts.append("websocket")
        if len(attempts) >= 3:
            stop.set()
        raise config._NoWebsocket("502 Bad Gateway")

    def long_poll(on_change, stop_event, until=None):
        attempts.append("long-poll")
        assert until is not None  # bounded: the websocket gets another chance
        time.sleep(max(0.0, until - time.monotonic()))

    monkeypatch.setattr(source, "_watch_websocket", websocket)
    monkeypatch.setattr(source, "_watch_long_poll", long_poll)
    # when
    source.watch(lambda data: None, stop)
    # then
    assert attempts[:4] == ["websocket", "long-poll", "websocket", "long-poll"]


def test_event_publisher__batch_refused_for_one_event__drops_only_that_one():
    # given a platform that refuses a batch naming its second event
    from platform_client.event import EventPublisher

    class Platform:
        def __init__(self):
            self.bodies: list[list[dict]] = []

        def post(self, url, content, headers):
            batch = json.loads(content)
            self.bodies.append(batch)
            bad = [i for i, event in enumerate(batch) if event["type"] == "bad"]
            if bad:
                errors = [{"index": i, "field": "type", "message": "is refused"} for i in bad]
                body = {"error": {"code": "invalid_events", "message": "no", "details": {"errors": errors}}}
                return httpx.Response(400, json=body)
            return httpx.Response(201, json={"results": []})

    platform = Platform()
    dropped: list[tuple[list[str], str]] = []
    publisher = EventPublisher(
        platform,
        source="/svc",
        flush_interval=0.01,
        on_drop=lambda ev, why: dropped.append(([e["type"] for e in ev], why)),
    )
    for type_ in ("a", "bad", "c"):
        publisher.publish(type_)
    # when
    flushed = publisher.flush(timeout=3)
    publisher.close()
    # then the other two were sent, the refused one reported, and flush said not everything was stored
    assert [e["type"] for e in platform.bodies[-1]] == ["a", "c"]
    assert dropped == [(["bad"], "rejected")]
    assert flushed is False and publisher.rejected == 1 and publisher.sent == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "cycle"])
def test_event_publisher__an_event_json_cannot_hold__drops_only_that_one(bad):
    # given a batch whose second event's data is no JSON (NaN, an infinity, a reference cycle)
    from platform_client.event import EventPublisher

    class Platform:
        def __init__(self):
            self.bodies: list[str] = []

        def post(self, url, content, headers):
            self.bodies.append(content.decode())
            return httpx.Response(201, json={"results": []})

    if bad == "cycle":
        bad = {}
        bad["self"] = bad
    platform = Platform()
    dropped: list[tuple[list[str], str]] = []
    publisher = EventPublisher(
        platform, source="/svc", on_drop=lambda ev, why: dropped.append(([e["type"] for e in ev], why))
    )
    for type_, data in (("a", 1), ("bad", {"ratio": bad}), ("c", 3)):
        publisher.publish(type_, data)
    # when
    flushed = publisher.flush(timeout=3)
    publisher.close()
    # then the others went out as standard JSON, and the bad one was reported
    assert [json.loads(body, parse_constant=lambda token: 1 / 0) for body in platform.bodies]
    assert [e["type"] for e in json.loads(platform.bodies[-1])] == ["a", "c"]
    assert dropped == [(["bad"], "rejected")] and "cannot encode" in publisher.last_error
    assert flushed is False and publisher.rejected == 1 and publisher.sent == 2


@pytest.mark.parametrize(
    "options",
    [
        {"retry_initial": 0},  # an unreachable platform was retried without a pause: the thread spun
        {"flush_interval": float("nan")},
        {"flush_interval": -1},
        {"batch_size": 0},
        {"max_buffer": 2.5},
        {"retry_max": "30"},
    ],
)
def test_event_publisher__settings_it_cannot_work_with__refused_before_its_thread_starts(options):
    from platform_client.event import EventPublisher

    def publishers() -> int:  # other tests' threads may come and go meanwhile: only this kind counts
        return sum(thread.name == "platform-events" for thread in threading.enumerate())

    before = publishers()
    with pytest.raises((ValueError, TypeError), match=next(iter(options))):
        EventPublisher(object(), source="/svc", **options)
    assert publishers() == before


def test_discovery_blocking_watch__history_over_several_pages__tells_every_change():
    history = [{"action": "delete", "service": "billing", "index": i} for i in (4, 5, 6)]
    discovery = Discovery(FakeSession(history), use_websocket=False, wait_seconds=1.0)
    told: list[dict] = []
    discovery._callbacks.append(told.append)
    discovery._watched.add("billing")
    discovery._indexes["billing"] = 3
    discovery._blocking_round()
    assert [r["index"] for r in told] == [4, 5, 6]


def test_discovery_blocking_watch__service_first_seen__starts_from_now_not_from_history():
    discovery = Discovery(
        FakeSession([{"action": "create", "service": "billing", "index": 9}]),
        use_websocket=False,
        wait_seconds=1.0,
    )
    told: list[dict] = []
    discovery._callbacks.append(told.append)
    discovery._watched.add("billing")
    discovery._blocking_round()
    assert told == []


def test_cli__interrupted__exits_130_without_a_traceback(capsys):
    import argparse

    from platform_client.cli import run

    def interrupted(session, options):
        raise KeyboardInterrupt

    options = argparse.Namespace(
        url="http://127.0.0.1:9", client_id="id", client_secret="secret", scope=None, handler=interrupted
    )
    assert run(options) == 130
    assert "Traceback" not in capsys.readouterr().err


def test_monitor_stop__a_report_in_flight__lands_before_the_stopped_one():
    # given a periodic report held up on its way to the platform
    sent: list[str] = []
    in_flight, release = threading.Event(), threading.Event()

    class SlowSession:
        def call(self, method: str, url: str, json: dict | None = None, **kwargs) -> dict:
            if not sent:
                in_flight.set()
                release.wait(5)
            sent.append(json["status"]["status"])
            return {}

    monitor = Monitor(SlowSession(), "orders", node="orders-1", interval=0.05)
    monitor.stop_wait = 0.05  # the reporting thread outlasts the wait of stop()
    monitor.start()
    assert in_flight.wait(5)
    # when the service stops meanwhile
    stopper = threading.Thread(target=monitor.stop)
    stopper.start()
    time.sleep(0.2)
    release.set()
    stopper.join(10)
    # then STOPPED is the last word: no periodic report lands after it (the node would count again)
    assert sent[-1] == "STOPPED" and sent.count("STOPPED") == 1
    time.sleep(0.2)
    assert sent[-1] == "STOPPED"


class FlakySession:
    """The monitor's reports: refused with ``failure`` until told otherwise, then accepted."""

    def __init__(self, failure: Exception) -> None:
        self.failure: Exception | None = failure
        self.reports: list[dict] = []

    def call(self, method: str, url: str, json: dict | None = None, **kwargs) -> dict:
        if self.failure is not None:
            raise self.failure
        self.reports.append(json)
        return {}


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("[Errno 111] Connection refused"), PlatformError(503, "unavailable", "draining")],
)
def test_monitor_report_not_delivered__its_counts_go_in_the_next(failure, caplog):
    # given requests counted, and a platform that is down at the first report
    session = FlakySession(failure)
    monitor = Monitor(session, "orders", node="orders-1")
    monitor.endpoints.count("GET /orders", "success", 3)
    monitor.endpoints.count("GET /orders", "errors")
    with pytest.raises(type(failure)):
        monitor.report()
    # when more requests come and the platform is back
    monitor.endpoints.count("GET /orders", "success")
    time.sleep(0.05)
    session.failure = None
    monitor.report()
    # then the report carries every request, over the whole period
    [report] = session.reports
    assert report["stats"]["endpoints"] == [
        {"method": "GET /orders", "success": 4, "errors": 1, "dropped": 0}
    ]
    assert report["stats"]["seconds"] >= 0.05


def test_monitor_report_refused__is_not_sent_again():
    session = FlakySession(PlatformError(400, "invalid", "bad report"))
    monitor = Monitor(session, "orders", node="orders-1")
    monitor.endpoints.count("GET /orders", "success", 2)
    with pytest.raises(PlatformError):
        monitor.report()
    session.failure = None
    monitor.report()
    assert session.reports[0]["stats"]["endpoints"] == []


def test_monitor_background_report_failing__logs_one_line_naming_the_cause(caplog):
    session = FlakySession(httpx.ConnectError("[Errno 111] Connection refused"))
    monitor = Monitor(session, "orders", node="orders-1", interval=0.05)
    with caplog.at_level("WARNING", logger="platform_client.monitor"):
        monitor.start()
        time.sleep(0.2)
        monitor.stop()
    failed = [r for r in caplog.records if "a report failed" in r.getMessage()]
    assert failed and all(r.exc_info is None for r in failed)
    assert "Connection refused" in failed[0].getMessage()


def test_registration__an_unexpected_heartbeat_error__the_thread_keeps_beating():
    # only PlatformError and httpx errors were caught: a non-JSON answer (ValueError) ended the
    # heartbeat thread without a word, and the node expired while the service ran on
    from platform_client.discovery import Registration

    class Session:
        beats = 0

        def call(self, method, path, **kwargs):
            if method == "POST":
                self.beats += 1
                if self.beats == 1:
                    raise ValueError("Expecting value: line 1 column 1 (char 0)")
            return {"id": "n"}

    session = Session()
    registration = Registration(session, "orders", "1", "10.0.0.1", 80, interval=0.01, node_id="n")
    registration.start()
    try:
        deadline = time.monotonic() + 10
        while session.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert session.beats >= 3 and registration._thread.is_alive()
    finally:
        registration.deregister()
