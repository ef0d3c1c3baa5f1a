"""Subscriptions API and webhook delivery: signatures, order, retries, dead letters, redelivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest

from event_app import services
from event_app.models import Delivery, Event, Subscription

pytestmark = pytest.mark.django_db(transaction=True)
SUBS = "/api/v1/events/subscriptions/"


class Receiver:
    """A webhook receiver on 127.0.0.1 that fails the requests listed in ``fail`` (1-based)."""

    def __init__(self, fail: set[int] | None = None, fail_always: bool = False) -> None:
        self.fail, self.fail_always = fail or set(), fail_always
        self.requests: list[tuple[dict, bytes]] = []
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.requests.append((dict(self.headers.items()), body))
                failing = outer.fail_always or len(outer.requests) in outer.fail
                if not failing:
                    outer.received.append(json.loads(body))
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.EVENTS_WEBHOOK_BACKOFF_SECONDS = 0
    settings.EVENTS_WEBHOOK_MAX_ATTEMPTS = 3


def subscribe(operator, url, **body):
    response = operator.post(
        SUBS, {"name": "orders-hook", "types": ["order.*"], "url": url, **body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_subscription_create__returns_secret_once(operator):
    # when
    body = subscribe(operator, "https://example.invalid/hook")
    # then
    assert body["secret"].startswith("whsec_")
    assert "secret" not in operator.get(f"{SUBS}orders-hook/").json()


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!", "whsec_abc"])
def test_subscription__secret_whose_key_is_empty_or_not_base64__400_nothing_stored(operator, secret):
    # "whsec_!!!" was base64-decoded leniently to no key at all: an HMAC anyone can compute
    body = {"name": "orders-hook", "url": "https://example.invalid/hook", "secret": secret}
    response = operator.post(SUBS, body, format="json")
    assert (response.status_code, list(response.json()["error"]["details"])) == (400, ["secret"])
    assert not Subscription.objects.exists()
    good = "whsec_" + base64.b64encode(b"k" * 24).decode()
    subscribe(operator, "https://example.invalid/hook", secret=good)
    response = operator.patch(f"{SUBS}orders-hook/", {"secret": secret}, format="json")
    assert response.status_code == 400, response.content


def test_subscription_create__name_taken__is_409_exists_and_keeps_the_first(operator):
    first = subscribe(operator, "https://example.invalid/hook")
    body = {"name": "orders-hook", "url": "https://example.invalid/other"}
    again = operator.post(SUBS, body, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "subscription_exists")
    assert again.json()["error"]["details"] == {"name": "orders-hook"}
    assert Subscription.objects.get().url == "https://example.invalid/hook" and first["name"] == "orders-hook"


def test_subscription_create__without_events_read__403_names_the_scope(api_client):
    # a subscription reads the stream: managing one needs events:read as well as events:write
    writer = api_client("events:write")
    response = writer.post(SUBS, {"name": "s", "sink": "websocket"}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope" and "'events:read'" in error["message"]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("field", ["types", "sources"])
def test_subscription_create__more_than_100_types_or_sources__400(operator, field):
    body = {"name": "wide", "sink": "websocket", field: [f"t{i}" for i in range(101)]}
    response = operator.post(SUBS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:alert(1)", "nope"])
def test_subscription_create__non_http_url__400(operator, url):
    response = operator.post(SUBS, {"name": "bad", "url": url}, format="json")
    assert response.status_code == 400
    assert not Subscription.objects.exists()


def test_subscription_crud__update_and_delete(operator):
    # given
    subscribe(operator, "http://127.0.0.1:9/hook")
    # when
    patched = operator.patch(f"{SUBS}orders-hook/", {"types": ["user.*"], "is_active": False}, format="json")
    listed = operator.get(SUBS).json()["results"]
    deleted = operator.delete(f"{SUBS}orders-hook/")
    # then
    assert patched.json()["types"] == ["user.*"] and patched.json()["is_active"] is False
    assert [s["name"] for s in listed] == ["orders-hook"]
    assert deleted.status_code == 204 and not Subscription.objects.exists()


def test_subscription_update__a_field_it_does_not_have__is_400_and_changes_nothing(operator):
    subscribe(operator, "http://127.0.0.1:9/hook")
    refused = operator.patch(f"{SUBS}orders-hook/", {"active": False, "types": ["user.*"]}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["details"] == {"active": ["Unknown field."]}
    kept = Subscription.objects.get(name="orders-hook")
    assert kept.is_active and kept.types != ["user.*"]


def test_subscriptions__read_scope__cannot_create(reader):
    response = reader.post(SUBS, {"name": "x", "url": "http://127.0.0.1/"}, format="json")
    assert response.status_code == 403


def test_subscriptions__outsider__403(outsider):
    assert outsider.get(SUBS).status_code == 403


def test_delivery__matching_events__are_posted_in_order_and_signed(operator, publisher, receiver):
    # given
    hook = receiver()
    secret = subscribe(operator, hook.url)["secret"]
    # when
    batch = [
        {"type": t, "source": "/shop", "data": {"n": i}}
        for i, t in enumerate(["order.a", "user.x", "order.b"])
    ]
    publisher.post("/api/v1/events/", batch, format="json")
    # then
    assert [r["type"] for r in hook.received] == ["order.a", "order.b"]
    headers, body = hook.requests[0]
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == expected
    assert headers["content-type"] == "application/cloudevents+json"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_delivery__failing_receiver__is_retried_then_delivered(operator, publisher, receiver):
    # given: the receiver fails the first two requests
    hook = receiver(fail={1, 2})
    subscribe(operator, hook.url)
    # when
    publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    # then
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, len(hook.requests)) == ("delivered", 3, 3)


def test_delivery__receiver_always_fails__dead_letter_then_redeliver(operator, publisher, receiver):
    # given
    hook = receiver(fail_always=True)
    subscribe(operator, hook.url)
    publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 3, 500)
    dead = operator.get(f"{SUBS}orders-hook/deliveries/", {"status": "dead"}).json()["results"]
    assert [d["id"] for d in dead] == [delivery.pk]
    # when: the receiver recovers and the operator redelivers
    hook.fail_always = False
    response = operator.post(f"{SUBS}orders-hook/redeliver/", {"all_dead": True}, format="json")
    # then
    assert response.json() == {"requeued": 1}
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    by_event = operator.get(f"/api/v1/events/{delivery.event_id}/deliveries/").json()["results"]
    assert [(d["subscription"], d["status"]) for d in by_event] == [("orders-hook", "delivered")]


def test_delivery__waiting_retry__blocks_later_events_of_that_subscription(
    operator, publisher, receiver, settings
):
    # given: real backoff, the receiver fails the first request
    settings.EVENTS_WEBHOOK_BACKOFF_SECONDS = 60
    hook = receiver(fail={1})
    subscribe(operator, hook.url)
    # when
    publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    publisher.post("/api/v1/events/", {"type": "order.b", "source": "/shop"}, format="json")
    # then: order.b waits behind order.a's retry
    assert len(hook.requests) == 1
    assert list(Delivery.objects.order_by("id").values_list("status", "attempts")) == [
        ("pending", 1),
        ("pending", 0),
    ]
    assert services.deliveries_due_subscriptions() == []


def queued_with_backoff(operator, publisher, receiver, settings, *, fail: set[int], types: list[str]):
    """A subscription (2 s first retry) to a receiver failing the requests in ``fail``, with one
    pending delivery per event type published (no runner started yet); its id and the receiver."""
    settings.EVENTS_WEBHOOK_BACKOFF_SECONDS = 2
    hook = receiver(fail=fail)
    subscribe(operator, hook.url)
    with mock.patch("platformsite.tasks.dispatch"):
        for type_ in types:
            publisher.post("/api/v1/events/", {"type": type_, "source": "/shop"}, format="json")
    return Subscription.objects.get().pk, hook


def test_delivery__waiting_retry__one_runner_is_scheduled_for_when_it_falls_due(
    operator, publisher, receiver, settings
):
    # given: two pending deliveries, the receiver fails the first request
    from event_app import tasks

    subscription_id, hook = queued_with_backoff(
        operator, publisher, receiver, settings, fail={1}, types=["order.a", "order.b"]
    )
    # when: a runner fails the head, then the second publish's runner finds it waiting
    with mock.patch("platformsite.tasks.dispatch") as dispatch:
        tasks.deliver_subscription(subscription_id)
        tasks.deliver_subscription(subscription_id)
    # then: one wake-up, at the retry's due time (about 2 s); nothing overtook the head
    assert dispatch.call_count == 1
    (task, args), kwargs = dispatch.call_args
    assert task is tasks.deliver_subscription and args == (subscription_id,)
    assert 1.5 <= kwargs["countdown"] <= 2.3
    assert len(hook.requests) == 1


def test_delivery__retry_fallen_due__a_runner_sends_the_queue_in_order(
    operator, publisher, receiver, settings
):
    # given: the head failed once and is due again
    from event_app import tasks

    subscription_id, hook = queued_with_backoff(
        operator, publisher, receiver, settings, fail={1}, types=["order.a", "order.b"]
    )
    with mock.patch("platformsite.tasks.dispatch"):
        tasks.deliver_subscription(subscription_id)
    Delivery.objects.filter(status="pending").update(next_attempt_at=None)
    # when
    with mock.patch("platformsite.tasks.dispatch") as dispatch:
        tasks.deliver_subscription(subscription_id)
    # then
    assert [event["type"] for event in hook.received] == ["order.a", "order.b"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert dispatch.call_count == 0


def test_delivery__each_wait__gets_its_own_wake_up(operator, publisher, receiver, settings):
    # given a head that fails, is retried when due, and fails again
    from event_app import tasks

    subscription_id, hook = queued_with_backoff(
        operator, publisher, receiver, settings, fail={1, 2}, types=["order.a"]
    )
    with mock.patch("platformsite.tasks.dispatch") as dispatch:
        tasks.deliver_subscription(subscription_id)  # attempt 1 fails: a wake-up
        Delivery.objects.update(next_attempt_at=None)  # the wake-up's time has come
        tasks.deliver_subscription(subscription_id)  # attempt 2 fails: another wake-up
    # then both waits were scheduled, the second one for its longer backoff
    assert [call.kwargs["countdown"] > 3 for call in dispatch.call_args_list] == [False, True]
    assert len(hook.requests) == 2


def test_webhook_filters__cached_by_an_earlier_release__are_read_again(operator, publisher):
    # given the shared cache still holding the filters in the old shape (rows without a version)
    from django.core.cache import cache

    from event_app import selectors

    subscribe(operator, "http://127.0.0.1:9/hook")
    cache.set("events:webhook-filters", [(1, ["x.*"], [], "")])
    cache.set(selectors.WEBHOOK_FILTERS_KEY, [(1, ["x.*"], [], "")])
    selectors._forget_local_filters()
    # when
    with mock.patch("platformsite.tasks.dispatch"):
        response = publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    # then
    assert response.status_code == 201
    assert Delivery.objects.count() == 1


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks of PostgreSQL"
)
def test_subscription_delete__racing_a_publish__waits_for_it_and_succeeds(operator, publisher):
    # given a publish that holds the subscription (its deliveries not committed yet)
    from django.db import connection, transaction

    from event_app import selectors

    subscribe(operator, "http://127.0.0.1:9/hook")
    subscription = Subscription.objects.get()
    event = services.event_publish(type="user.a", source="/shop", event_id="race")
    holding, release, deleted = threading.Event(), threading.Event(), []

    def publish_in_flight():
        try:
            with transaction.atomic():
                assert selectors.existing_subscriptions({subscription.pk}) == {subscription.pk}
                Delivery.objects.create(subscription=subscription, event=event)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def delete():
        try:
            services.subscription_delete(subscription=Subscription.objects.get(pk=subscription.pk))
            deleted.append(True)
        finally:
            connection.close()

    publisher_thread = threading.Thread(target=publish_in_flight)
    publisher_thread.start()
    assert holding.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    # when the publish commits while the delete waits for it
    deleter.join(0.5)
    release.set()
    publisher_thread.join(10)
    deleter.join(10)
    # then the delete went through, with the deliveries it waited for
    assert deleted == [True]
    assert not Subscription.objects.exists() and not Delivery.objects.exists()


def test_publish__with_subscription__only_enqueues_delivery(operator, publisher, receiver):
    # given
    hook = receiver()
    subscribe(operator, hook.url)
    # when: background work is handed off, not run in the request
    with mock.patch("platformsite.tasks.dispatch") as dispatch:
        response = publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    # then
    assert response.status_code == 201
    assert dispatch.call_count == 1
    assert hook.requests == []
    assert Delivery.objects.get().status == "pending"


def test_webhook_filters__reader_loaded_before_a_change__cannot_put_its_old_list_back(operator):
    # given: a reader loads the subscriptions table, then a subscription is created before it caches
    from event_app import selectors

    subscribe(operator, "http://127.0.0.1:9/a", name="first")
    selectors.forget_webhook_filters()
    real_filter = Subscription.objects.filter

    def load_then_change(*args, **kwargs):
        rows = list(real_filter(*args, **kwargs))
        patched.stop()
        subscribe(operator, "http://127.0.0.1:9/b", name="second")
        return rows

    patched = mock.patch.object(Subscription.objects, "filter", side_effect=load_then_change)
    patched.start()
    stale = selectors.webhook_filters()
    # when
    fresh = selectors.webhook_filters()
    # then
    assert len(stale) == 1
    assert sorted(pk for pk, _ in fresh) == sorted(Subscription.objects.values_list("pk", flat=True))


def test_publish__subscription_deleted_while_its_filters_are_cached__stores_without_delivery(
    operator, publisher
):
    # given: the filters are cached, then the row goes without the cache hearing of it
    from event_app import selectors

    subscribe(operator, "http://127.0.0.1:9/hook")
    assert len(selectors.webhook_filters()) == 1
    Subscription.objects.all().delete()
    # when
    with mock.patch("platformsite.tasks.dispatch") as dispatch:
        response = publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    # then
    assert response.status_code == 201
    assert not Delivery.objects.exists() and dispatch.call_count == 0
    assert Event.objects.filter(type="order.a").exists()


def test_admin_action__redeliver__requeues_dead_letters(admin_client, operator, publisher, receiver):
    # given
    hook = receiver(fail_always=True)
    subscribe(operator, hook.url)
    publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    delivery = Delivery.objects.get(status="dead")
    hook.fail_always = False
    # when
    response = admin_client.post(
        "/admin/event_app/delivery/", {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    # then
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_delivery__receiver_failing_30_percent__every_event_delivered_once_in_order(
    operator, publisher, receiver, settings
):
    # given: a receiver failing ~30% of requests, two subscriptions, 8 attempts
    import random

    settings.EVENTS_WEBHOOK_MAX_ATTEMPTS = 8
    rng = random.Random(7)
    hook = receiver(fail={n for n in range(1, 2000) if rng.random() < 0.3})
    subscribe(operator, hook.url)
    other = receiver()
    subscribe(operator, other.url, name="users-hook", types=["user.*"])
    # when: 200 events in batches
    for start in range(0, 200, 50):
        batch = [
            {"type": "order.x" if i % 4 else "user.x", "source": "/shop", "id": str(i), "specversion": "1.0"}
            for i in range(start, start + 50)
        ]
        assert post_json(publisher, batch).status_code == 201
    # then
    orders = [int(e["id"]) for e in hook.received]
    users = [int(e["id"]) for e in other.received]
    assert orders == [i for i in range(200) if i % 4]
    assert users == [i for i in range(200) if not i % 4]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def post_json(client, batch):
    return client.generic(
        "POST", "/api/v1/events/", json.dumps(batch), content_type="application/cloudevents-batch+json"
    )


def test_subscription_create__a_concurrent_create_of_the_name__is_409_not_a_500(operator):
    from unittest import mock

    from django.db.models import QuerySet

    from event_app.services import subscription_create
    from platformsite.api.errors import Conflict

    subscribe(operator, "https://example.invalid/hook")
    with mock.patch.object(QuerySet, "exists", return_value=False), pytest.raises(Conflict) as refused:
        subscription_create(name="orders-hook", url="https://example.invalid/other")  # past the check
    assert (refused.value.code, refused.value.details) == ("subscription_exists", {"name": "orders-hook"})
    assert Subscription.objects.get().url == "https://example.invalid/hook"
