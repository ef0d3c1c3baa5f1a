"""Faults under load (``make test-faults``): while writers put config values, heartbeats, events
and spans through both web nodes, each test breaks one thing, lets it recover, and checks that
every write the platform accepted (answered 2xx) is found afterwards, that failures were answered
the documented way, and what the clients saw.  The tests run in this file's order, on one
platform (tests/faults/conftest.py); each adds a row to the fault matrix, printed at the end and
written to ``var/faults/matrix.json`` and ``var/faults/matrix.txt``.
"""

from __future__ import annotations

import json
import secrets
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from platform_client.config import Config, PlatformSource
from platform_client.event import subscribe
from platform_client.session import PlatformSession
from tests.faults.conftest import REPORT_DIR, SUMMARY
from tests.faults.load import Load, Tally
from tests.faults.matrix import Matrix
from tests.faults.stack import wait_log

pytestmark = pytest.mark.faults


def until(check, seconds: float = 30.0, step: float = 0.2):
    """``check()``'s first truthy answer within ``seconds``; None if it never gave one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(step)
    return None


class Hook(BaseHTTPRequestHandler):
    """The webhook receiver: every delivery of the run's subscription, as (webhook-id, event id)."""

    received: list[tuple[str, str]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with Hook.lock:
            Hook.received.append((self.headers.get("webhook-id", ""), body["id"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def run() -> str:
    return secrets.token_hex(3)


@pytest.fixture(scope="module")
def token(stack) -> str:
    answer = httpx.post(
        f"{stack.nodes[0].http}/o/token/",
        data={"grant_type": "client_credentials"},
        auth=(stack.client_id, stack.client_secret),
        timeout=20,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    matrix = Matrix(REPORT_DIR)
    yield matrix
    matrix.write()
    SUMMARY.append(matrix.markdown())


@pytest.fixture(scope="module")
def hook(stack, token, run):
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = {
        "name": f"faults-{run}",
        "types": ["faults.*"],
        "sink": "webhook",
        "url": f"http://127.0.0.1:{server.server_port}/hook",
    }
    created = httpx.post(
        f"{stack.nodes[0].http}/api/v1/events/subscriptions/",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert created.status_code == 201, created.text
    yield Hook
    server.shutdown()


@pytest.fixture(scope="module")
def load(stack, token, run, hook) -> Load:
    load = Load([node.http for node in stack.nodes], token, run)
    load.prepare()
    yield load
    load.stop()


def _session(stack, node) -> PlatformSession:
    return PlatformSession(node.http, stack.client_id, stack.client_secret, ws_url=node.ws, timeout=20)


@pytest.fixture(scope="module")
def watchers(stack, load):
    """Websocket clients of the SDK, one per node: a config watch and an event subscription."""
    received: list[str] = []
    lock = threading.Lock()

    def handler(event):
        with lock:
            received.append(event["event_id"])

    sessions = [_session(stack, node) for node in stack.nodes]
    config = Config(
        sources=[PlatformSource(load.namespace(0), env="production", session=sessions[1])], watch=True
    )
    subscription = subscribe(sessions[0], handler, types=["faults.*"])
    assert until(lambda: subscription.last_event_id is not None, 20), "the event subscription did not start"
    load.start()  # every event of the load is published after the subscription started
    yield {"config": config, "events": received, "subscription": subscription, "sessions": sessions}
    subscription.stop()
    config.close()
    for session in sessions:
        session.close()


def _freeze(server) -> tuple[Callable[[], None], Callable[[], None]]:
    """Breaking ``server`` with SIGSTOP and mending it with SIGCONT: it keeps its connections and
    the kernel acknowledges what is sent and queues new connections, but nothing is answered (a
    hung server, stalled storage, a network that drops packets): what a client sees is its own
    read or connect timeout, not a refused connection."""
    return lambda: server.signal(signal.SIGSTOP), lambda: server.signal(signal.SIGCONT)


def _fault_window(load: Load, name: str, break_it, mend_it, hold: float = 4.0, settle: float = 3.0) -> Tally:
    """Load alone for a moment, the fault for ``hold`` seconds, then ``settle`` seconds after it mends."""
    with load.phase(name) as tally:
        time.sleep(2)
        load.down()
        break_it()
        time.sleep(hold)
        mend_it()
        load.up()
        time.sleep(settle)
    return tally


def _writes_recover(stack, token) -> bool:
    """Both nodes accept writes again: an event and a node's registration (the database and Redis;
    a process may still publish from its own copy of the webhook filters for a moment)."""
    headers = {"Authorization": f"Bearer {token}"}
    for node in stack.nodes:
        event = {"type": "probe.recovered", "source": "/faults/probe", "id": secrets.token_hex(8)}
        probe = {"service": "faults-probe", "address": "10.9.9.9", "port": 9000, "ttl": 60}
        try:
            answers = [
                httpx.post(f"{node.http}/api/v1/events/", json=event, headers=headers, timeout=20),
                httpx.put(
                    f"{node.http}/api/v1/discovery/nodes/probe-{node.name}/",
                    json=probe,
                    headers=headers,
                    timeout=20,
                ),
            ]
        except httpx.TransportError:
            return False
        if any(answer.status_code >= 300 for answer in answers):
            return False
    return True


def test_baseline(stack, load, watchers, matrix):
    with load.phase("none (baseline)") as tally:
        time.sleep(4)
    lost = load.lost(stack.nodes[1].http)
    matrix.add(tally, lost)
    assert not lost, lost
    assert not tally.write_errors and not tally.read_errors, tally.row()


def _postgres_outage(
    stack, token, load, matrix, name: str, hold: float, break_it=None, mend_it=None
) -> Tally:
    """PostgreSQL stopped (immediate; or ``break_it`` then ``mend_it``) for ``hold`` seconds under
    load: nothing accepted lost, no process restarted, every failure a 503 in the error shape;
    the phase's tally."""
    tally = _fault_window(
        load, name, break_it or stack.postgres.stop, mend_it or stack.postgres.start, hold=hold
    )
    assert until(lambda: _writes_recover(stack, token), 60), "writes did not recover"
    lost = load.lost(stack.nodes[1].http)
    matrix.add(tally, lost, note=f"slowest answer of any kind: {tally.row()['slowest_answer_s']} s")
    assert not lost, lost
    assert all(proc.starts == 1 and proc.alive() for proc in stack.processes()), "a process was restarted"
    assert not tally.bad_shapes, tally.bad_shapes
    assert set(tally.write_errors) | set(tally.read_errors) <= {"503"}, tally.row()
    return tally


def test_postgres_restart(stack, token, load, watchers, matrix):
    _postgres_outage(stack, token, load, matrix, "PostgreSQL restart (immediate stop, 4 s down)", hold=4)


def test_postgres_down_longer_than_the_pool_wait(stack, token, load, watchers, matrix):
    # Down for 12 s, longer than PLATFORM_DB_POOL_TIMEOUT (5 s): once the first requests waited
    # it out and found the database unreachable, the others are answered 503 at once
    tally = _postgres_outage(stack, token, load, matrix, "PostgreSQL down 12 s (immediate stop)", hold=12)
    assert tally.row()["median_error_s"] < 1.0, tally.row()


def test_postgres_stops_answering(stack, token, load, watchers, matrix):
    # A query waiting PLATFORM_DB_STALL_SECONDS (5 s) on a server that leaves a new connection
    # unanswered too is abandoned, answered 503, and the database refused at once for
    # PLATFORM_DB_DOWN_SECONDS
    freeze, thaw = _freeze(stack.postgres)
    name = "PostgreSQL stops answering 12 s (SIGSTOP)"
    tally = _postgres_outage(stack, token, load, matrix, name, hold=12, break_it=freeze, mend_it=thaw)
    # No request waits for as long as the hang: each is answered before a client's usual 10 s
    # timeout (the stall, then the probe's connect timeout of 3 s)
    assert tally.row()["slowest_answer_s"] < 10, tally.row()


def _marker_reaches_the_watcher(stack, token, load, watchers, value: str) -> bool:
    """A config value written on node A reaches the SDK's config watch on node B."""
    url = (
        f"{stack.nodes[0].http}/api/v1/config/namespaces/{load.namespace(0)}/layers/production/values/marker"
    )
    answer = httpx.put(url, json={"value": value}, headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert answer.status_code in (200, 201), answer.text
    return bool(until(lambda: watchers["config"].get("marker") == value, 30))


def _every_event_streamed(load, watchers) -> set[str]:
    """The run's events accepted until now that the SDK's event subscription has not handed over
    (after a wait; the load goes on publishing meanwhile, and those are not waited for)."""
    accepted = load.accepted("event")

    def missing() -> set[str]:
        return accepted - set(watchers["events"])

    until(lambda: not missing(), 30)
    return missing()


def _report_checks(stack, token, run: str) -> list[int]:
    """A node's check report sent to each web node; the status codes of the answers."""
    body = {
        "service": f"faults-{run}-checks",
        "node": "n1",
        "checks": [{"name": "db", "status": "passing", "interval": 10}],
    }
    headers = {"Authorization": f"Bearer {token}"}
    return [
        httpx.post(f"{node.http}/api/v1/monitor/reports/", json=body, headers=headers, timeout=20).status_code
        for node in stack.nodes
    ]


def _subscribe_to_each_node(stack, token) -> list[int | str]:
    """A discovery watch opened on each web node and subscribed: the code it was closed with
    within 10 s, or ``"open"``."""
    codes: list[int | str] = []
    for node in stack.nodes:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with ws_connect(f"{node.ws}/ws/discovery/", additional_headers=headers, open_timeout=10) as ws:
                ends = time.monotonic() + 10
                while time.monotonic() < ends:
                    try:
                        frame = json.loads(ws.recv(timeout=ends - time.monotonic()))
                    except TimeoutError:
                        break
                    if frame.get("type") == "hello":
                        ws.send(json.dumps({"type": "subscribe", "services": ["faults-probe"]}))
                codes.append("open")
        except ConnectionClosed as closed:
            codes.append(closed.rcvd.code if closed.rcvd is not None else "closed without a code")
    return codes


def _redis_fault(stack, token, load, watchers, matrix, name: str, break_it, mend_it, hold: float) -> Tally:
    """Redis broken for ``hold`` seconds under load: nothing accepted lost, the SDK's config watch
    and event subscription carry on, web nodes and beat not restarted, every failure a 503 in the
    error shape, reads answered from the database, node check reports stored, a websocket
    subscription closed with 1013; the phase's tally."""
    reported: list[int] = []
    subscribed: list[int | str] = []

    def break_and_report() -> None:
        break_it()
        reported.extend(_report_checks(stack, token, load.run))
        subscribed.extend(_subscribe_to_each_node(stack, token))

    tally = _fault_window(load, name, break_and_report, mend_it, hold=hold)
    # A Celery worker may exit when the broker goes away (kombu's restoring of unacknowledged
    # messages raises): a failure exit, which the process manager restarts (deploy/systemd:
    # Restart=on-failure), as done here.
    exited = {worker.name: worker.proc.returncode for worker in stack.workers if not worker.alive()}
    for worker in stack.workers:
        if worker.name in exited:
            stack.start_worker(worker)
    assert until(lambda: _writes_recover(stack, token), 60), "writes did not recover"
    lost = load.lost(stack.nodes[1].http)
    watched = _marker_reaches_the_watcher(stack, token, load, watchers, f"after-redis-{time.time()}")
    unstreamed = _every_event_streamed(load, watchers)
    exits = ", ".join(f"{name} exited with {code} and was restarted" for name, code in exited.items())
    matrix.add(
        tally,
        lost,
        note=f"config watch resumed: {watched}; events not streamed: {len(unstreamed)}; "
        f"node check reports while down: {reported}; websocket subscriptions while down closed with: "
        f"{subscribed}; Celery workers: {exits or 'kept running'}",
    )
    assert not lost, lost
    assert watched, "the config watch did not resume"
    assert not unstreamed, sorted(unstreamed)[:20]
    assert reported == [200, 200], reported
    # Closed "try again later" (Redis hung: once a group join waited PLATFORM_REDIS_TIMEOUT), not
    # left waiting for as long as Redis is down
    assert subscribed == [1013, 1013], subscribed
    assert not tally.bad_shapes, tally.bad_shapes
    assert all(code != 0 for code in exited.values()), exited
    kept = [node.proc for node in stack.nodes] + [stack.beat]
    assert all(proc.starts == 1 and proc.alive() for proc in kept), "a web node or beat was restarted"
    assert set(tally.write_errors) | set(tally.read_errors) <= {"503"}, tally.row()
    # Reads fall back to the database while Redis is down: every one is answered
    assert 0 < tally.while_down["reads_answered"] == tally.while_down["reads"], tally.row()
    return tally


def test_redis_restart(stack, token, load, watchers, matrix):
    def mend() -> None:
        stack.redis.start()
        stack.redis.wait()

    name = "Redis restart (4 s down, nothing persisted)"
    _redis_fault(stack, token, load, watchers, matrix, name, stack.redis.stop, mend, hold=4)


def test_redis_stops_answering(stack, token, load, watchers, matrix):
    # A hung Redis soon stops accepting connections too (its listen queue fills).  Once a command
    # or a connect has waited for it, the others are refused at once, and no connection is
    # opened (PLATFORM_REDIS_DOWN_SECONDS).
    name = "Redis stops answering 12 s (SIGSTOP)"
    tally = _redis_fault(stack, token, load, watchers, matrix, name, *_freeze(stack.redis), hold=12)
    assert tally.row()["median_error_s"] < 1.0, tally.row()


def _register(stack, token, node_id: str, service: str, ttl: int) -> None:
    body = {"service": service, "address": "10.9.9.9", "port": 9000, "interval": 1, "ttl": ttl}
    answer = httpx.put(
        f"{stack.nodes[0].http}/api/v1/discovery/nodes/{node_id}/",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert answer.status_code in (200, 201), answer.text


def _status(stack, token, node_id: str) -> str:
    answer = httpx.get(
        f"{stack.nodes[1].http}/api/v1/discovery/nodes/{node_id}/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    return answer.json().get("status", "") if answer.status_code == 200 else ""


def _deliveries(accepted: set[str], hook) -> tuple[set[str], dict[str, set[str]], int]:
    """Of the ``accepted`` events, those not delivered yet; the webhook ids seen per event;
    repeated receptions."""
    with hook.lock:
        received = list(hook.received)
    ids: dict[str, set[str]] = {}
    for webhook_id, event_id in received:
        ids.setdefault(event_id, set()).add(webhook_id)
    return accepted - set(ids), ids, len(received) - len(set(received))


def _report_calls(stack, token, service: str, node: str, requests: int) -> float:
    """Call statistics of one window for the router to aggregate (``POST /api/v1/router/stats/``);
    the seconds its answer took."""
    began = time.monotonic()
    window = {
        "service": service,
        "node": node,
        "endpoint": "faults",
        "start": int(time.time()),
        "seconds": 10,
        "requests": requests,
        "successes": requests,
    }
    answer = httpx.post(
        f"{stack.nodes[0].http}/api/v1/router/stats/",
        json={"caller": "faults", "windows": [window]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    assert answer.status_code == 202, answer.text
    return time.monotonic() - began


def _aggregated(stack, token, service: str, node: str) -> int:
    """The requests the router's evaluation merged for ``node`` (0 before it ran)."""
    answer = httpx.get(
        f"{stack.nodes[1].http}/api/v1/router/services/{service}/decisions/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    )
    if answer.status_code != 200:
        return 0
    return next((state["requests"] for state in answer.json()["nodes"] if state["node"] == node), 0)


def test_worker_and_beat_killed(stack, token, load, watchers, hook, run, matrix):
    expiring = f"faults-{run}-expiring"

    took: dict[str, float] = {}

    def kill() -> None:
        began = time.monotonic()
        for proc in [*stack.workers, stack.beat]:
            proc.kill()
        took["kill"] = time.monotonic() - began
        # while nothing runs the background work: a node that expires once the workers are back
        began = time.monotonic()
        _register(stack, token, expiring, f"faults-{run}-exp", ttl=1)
        took["register"] = time.monotonic() - began

    def mend() -> None:
        # last thing before the restart: the evaluation reads the windows of its lookback
        took["report"] = _report_calls(stack, token, load.service, load.node_id(0), 40)
        for proc in [*stack.workers, stack.beat]:
            proc.start()
        for worker in stack.workers:
            wait_log(worker, b" ready.")

    tally = _fault_window(load, "Celery workers and beat killed (kill -9, 4 s down)", kill, mend)
    # First: an evaluation counts only the windows of its lookback, and looking for every accepted
    # write of the run takes longer the more phases ran before.
    aggregated = until(lambda: _aggregated(stack, token, load.service, load.node_id(0)), 60)
    expired = until(lambda: _status(stack, token, expiring) == "critical", 60)
    lost = load.lost(stack.nodes[1].http)
    # Every event accepted until now; the load goes on publishing, and those are not waited for
    # (one published a moment before the check would still be on its way).
    accepted = load.accepted("event")
    until(lambda: not _deliveries(accepted, hook)[0], 90, 0.5)
    undelivered, webhook_ids, repeated = _deliveries(accepted, hook)
    twice = {event: ids for event, ids in webhook_ids.items() if len(ids) > 1}
    seconds = ", ".join(f"{step} {value:.1f} s" for step, value in took.items())
    matrix.add(
        tally,
        lost,
        note=f"node expired after restart: {bool(expired)}; calls aggregated by the "
        f"router after restart: {aggregated or 0} of 40; events not delivered: "
        f"{len(undelivered)}; repeated receptions (same webhook-id): {repeated}; events delivered "
        f"under two webhook-ids: {len(twice)}; answered while they were down: {seconds}",
    )
    assert not lost, lost
    assert expired, "the node registered meanwhile did not expire"
    assert aggregated == 40, f"the router did not aggregate the calls reported meanwhile ({seconds})"
    assert not undelivered, sorted(undelivered)[:20]
    # At least once: a delivery may be received again, always under its own webhook-id; one
    # delivery per event and subscription, never two.
    assert not twice, twice
    assert not tally.write_errors and not tally.read_errors, tally.row()


def test_a_web_node_killed(stack, token, load, watchers, matrix):
    node = stack.nodes[0]
    # The SDK given both nodes (PLATFORM_URL="http://a,http://b"), node A first.
    sdk = PlatformSession([node.http, stack.nodes[1].http], stack.client_id, stack.client_secret, timeout=20)
    sdk.call("GET", "/api/v1/auth/whoami/")
    sdk_saw: list[str] = []
    node_answered: list[bool] = []

    def kill() -> None:
        node.proc.kill()
        try:  # nothing of node A serves on: its processes' children died with them
            node_answered.append(httpx.get(f"{node.http}/healthz", timeout=2).status_code > 0)
        except httpx.TransportError:
            node_answered.append(False)
        try:
            sdk.call("GET", "/api/v1/auth/whoami/")
            sdk_saw.append("answered")
        except httpx.TransportError as exc:
            sdk_saw.append(type(exc).__name__)

    tally = _fault_window(
        load,
        "web node A killed (kill -9 of WSGI and ASGI), restarted after 4 s",
        kill,
        lambda: stack.restart_node(node),
    )
    sdk.close()
    lost = load.lost(stack.nodes[1].http)
    unstreamed = _every_event_streamed(load, watchers)
    matrix.add(
        tally,
        lost,
        note=f"the SDK's PlatformSession given nodes A and B, on A when it went down: "
        f"{sdk_saw[0]}; the load's clients moved to node B; events not streamed after "
        f"node A came back: {len(unstreamed)}",
    )
    assert node_answered == [False], "node A still answered once killed"
    assert sdk_saw == ["answered"], "the SDK did not fail over to node B"
    assert not lost, lost
    assert not unstreamed, sorted(unstreamed)[:20]
    # Only the calls in flight to node A, or sent to it before a client moved on, failed.
    assert set(tally.write_errors) | set(tally.read_errors) <= {"unreachable"}, tally.row()
