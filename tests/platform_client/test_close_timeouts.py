"""Closing the SDK's parts with the platform hung: each stops in the time it is given (what
``Platform.close(timeout)`` shares among them), not in the session's 10 s per call."""

from __future__ import annotations

import threading
import time

from platform_client.discovery import Registration
from platform_client.event import EventPublisher
from platform_client.monitor import Monitor
from platform_client.router import Router


class HungSession:
    """Every call hangs until ``answer`` is set (a platform under SIGSTOP); records its keywords."""

    def __init__(self) -> None:
        self.answer, self.hanging = threading.Event(), threading.Event()
        self.calls: list[tuple[str, dict]] = []

    def call(self, method: str, url: str, **kwargs) -> dict:
        self.calls.append((method, kwargs))
        self.hanging.set()
        self.answer.wait(30)
        return {}

    def post(self, url: str, **kwargs):
        self.call("POST", url, **kwargs)
        raise AssertionError("unreachable while hung")


def test_event_publisher_close__a_batch_hung_on_the_platform__returns_in_its_timeout():
    session = HungSession()
    publisher = EventPublisher(session, source="/svc", flush_interval=0.01)
    publisher.publish("order.created", {"n": 1})
    assert session.hanging.wait(5)
    started = time.monotonic()
    assert publisher.close(timeout=0.5) is False
    assert time.monotonic() - started < 0.5 + 0.5 + 2  # was the flush's 0.5 s, then 5 s for the thread
    session.answer.set()


def test_monitor_stop__a_report_hung_on_the_platform__returns_in_its_timeout():
    session = HungSession()
    monitor = Monitor(session, "orders", node="orders-1", interval=0.05).start()
    assert session.hanging.wait(5)  # a periodic report is in flight, and stays there
    started = time.monotonic()
    monitor.stop(timeout=0.5)
    assert time.monotonic() - started < 0.5 + 2  # was 5 s for the thread, then the last report's own wait
    assert [method for method, _ in session.calls] == ["POST"]  # no STOPPED report behind the hung one
    session.answer.set()


def test_monitor_stop__the_last_report_waits_only_what_is_left():
    session = HungSession()
    session.answer.set()
    monitor = Monitor(session, "orders", node="orders-1", interval=3600)
    monitor.stop(timeout=3)
    ((_, kwargs),) = session.calls
    assert 0 < kwargs["timeout"] <= 3


def test_registration_deregister__the_delete_waits_only_what_is_left():
    session = HungSession()
    session.answer.set()
    registration = Registration(session, "orders", "1.0.0", "10.0.0.7", 8080, interval=3600).start()
    registration.deregister(timeout=3)
    assert [method for method, _ in session.calls] == ["PUT", "DELETE"]
    assert 0 < session.calls[-1][1]["timeout"] <= 3


def test_router_close__the_last_stats_wait_only_what_is_left():
    session = HungSession()
    session.answer.set()
    router = Router(session, caller="gateway")
    router.recorder.record("orders", "orders-1", "GET /x", ok=True, latency_ms=3.0, now=time.time())
    router.close(timeout=3)
    ((method, kwargs),) = session.calls
    assert method == "POST" and kwargs["json"]["windows"]
    assert 0 < kwargs["timeout"] <= 3  # was the session's own 10 s, whatever Platform.close had left
