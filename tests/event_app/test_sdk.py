"""platform_client.event: background batches, retries while the platform is down, no silent loss,
search, and subscribe over a real websocket (uvicorn subprocess) with resume."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from event_app.models import Event
from platform_client.event import BufferFull, EventPublisher, publish_now, search, subscribe
from platform_client.session import PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(live_server, service_account):
    client_id, secret = service_account("events:read", "events:write")
    with PlatformSession(live_server.url, client_id, secret, scopes=["events:read", "events:write"]) as s:
        yield s


def test_publisher__events__arrive_in_batches_after_flush(session):
    # given
    publisher = EventPublisher(session, source="/billing", batch_size=50, flush_interval=0.05)
    # when
    ids = [publisher.publish("invoice.paid", {"n": i}, subject=f"inv/{i}", root_id="r") for i in range(120)]
    stored = publisher.close(timeout=20)
    # then
    assert stored and publisher.sent == 120
    assert (
        list(Event.objects.filter(source="/billing").order_by("id").values_list("event_id", flat=True)) == ids
    )
    assert Event.objects.filter(root_id="r", source="/billing").count() == 120


def test_publisher__an_event_published_in_a_span__carries_its_traceparent(session):
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    tracer = sdk_trace.TracerProvider().get_tracer("test")
    publisher = EventPublisher(session, source="/billing", flush_interval=0.05)

    with tracer.start_as_current_span("charge") as span:
        publisher.publish("invoice.paid", {"n": 1})
    publisher.publish("invoice.paid", {"n": 2})  # outside any span: none
    publisher.publish("invoice.paid", {"n": 3}, traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert publisher.close(timeout=20)

    context = span.get_span_context()
    stored = list(
        Event.objects.filter(source="/billing").order_by("id").values_list("traceparent", flat=True)
    )
    assert stored == [
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}",  # as W3C writes
        "",
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01",  # one given wins
    ]


def test_publisher__platform_down__retries_until_it_is_back(session, monkeypatch):
    # given: the first two sends fail at the network
    real_post, failures = session.post, []

    def flaky(*args, **kwargs):
        if len(failures) < 2:
            failures.append(1)
            raise httpx.ConnectError("down")
        return real_post(*args, **kwargs)

    monkeypatch.setattr(session, "post", flaky)
    publisher = EventPublisher(session, source="/s", retry_initial=0.01, flush_interval=0.01)
    # when
    publisher.publish("t.x", {"a": 1})
    stored = publisher.close(timeout=20)
    # then
    assert stored and len(failures) == 2
    assert Event.objects.filter(type="t.x").count() == 1


def test_publisher__buffer_full__raises_or_reports(session, monkeypatch):
    # given: the platform is unreachable
    def down(*args, **kwargs):
        raise httpx.ConnectError("down")

    monkeypatch.setattr(session, "post", down)
    dropped = []
    strict = EventPublisher(session, source="/s", max_buffer=2, retry_initial=0.01)
    lenient = EventPublisher(
        session, source="/s", max_buffer=1, retry_initial=0.01, on_drop=lambda ev, why: dropped.append(why)
    )
    # when / then
    strict.publish("a")
    strict.publish("b")
    with pytest.raises(BufferFull):
        strict.publish("c")
    lenient.publish("a")
    lenient.publish("b")
    assert dropped == ["buffer_full"]
    assert strict.pending == 2
    assert not strict.close(timeout=0.1) and not lenient.close(timeout=0.1)


def test_publisher__refused_batch__goes_to_on_drop(session):
    # given
    dropped = []
    publisher = EventPublisher(session, source="/s", on_drop=lambda ev, why: dropped.append((len(ev), why)))
    # when: an invalid extension name makes the platform refuse the batch
    publisher.publish("t", extensions={"Bad-Name": "x"})
    publisher.close(timeout=10)
    # then
    assert dropped == [(1, "rejected")]


def test_search__filters_and_pages(session):
    # given
    publish_now(
        session, [{"specversion": "1.0", "id": str(i), "source": "/s", "type": "a.b"} for i in range(5)]
    )
    # when
    found = list(search(session, type="a.*", order="oldest", page_size=2))
    # then
    assert [e["event_id"] for e in found] == ["0", "1", "2", "3", "4"]
    assert [e["event_id"] for e in search(session, type="a.*", order="oldest", limit=3)] == ["0", "1", "2"]
    assert list(search(session, type="a.*", limit=0)) == []


# --- subscribe over a real websocket ------------------------------------------------------------------


def test_subscribe__websocket__delivers_and_resumes_after_reconnect(asgi_platform):
    # given
    base, client_id, secret = asgi_platform.url, asgi_platform.client_id, asgi_platform.client_secret
    session = PlatformSession(base, client_id, secret, scopes=["events:read", "events:write"])
    got, arrived = [], threading.Event()

    def handler(event):
        got.append(event["type"])
        if len(got) >= 4:
            arrived.set()

    sub = subscribe(session, handler, types=["order.*"])
    assert sub.connected.wait(10)
    # when: two live events, a dropped connection, two events while away
    publish_now(
        session, [{"specversion": "1.0", "id": n, "source": "/s", "type": f"order.{n}"} for n in "ab"]
    )
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    sub._ws.close()  # the connection drops
    publish_now(
        session, [{"specversion": "1.0", "id": n, "source": "/s", "type": f"order.{n}"} for n in "cd"]
    )
    publish_now(session, [{"specversion": "1.0", "id": "u", "source": "/s", "type": "user.x"}])
    # then: the subscription reconnects and gets what it missed, once, in order
    assert arrived.wait(15), got
    time.sleep(0.3)
    sub.stop()
    session.close()
    assert got == ["order.a", "order.b", "order.c", "order.d"]


def test_subscribe__a_cached_token_revoked_meanwhile__connects_with_a_new_one(asgi_platform):
    # the subscription stopped for good on 4401, with the session still holding the revoked token
    base, client_id, secret = asgi_platform.url, asgi_platform.client_id, asgi_platform.client_secret
    session = PlatformSession(base, client_id, secret, scopes=["events:read"])
    revoked = session.credentials.token()
    answer = httpx.post(f"{base}/o/revoke_token/", data={"token": revoked}, auth=(client_id, secret))
    assert answer.status_code == 200
    sub = subscribe(session, lambda event: None, types=["order.*"])
    try:
        assert sub.connected.wait(15), sub.last_error
        assert session.credentials.token() != revoked
    finally:
        sub.stop()
        session.close()
