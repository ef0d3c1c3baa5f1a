"""The hot path of small publishes (event_app.hot): the full view's answer, from the group writer."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.db import OperationalError, connection

from auth_app.models import Account
from auth_app.services import binding_create, role_create, rule_create
from event_app import grouping, hot
from event_app.models import Event
from tests.hotpath import Driver

EVENTS = "/api/v1/events/"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="group commit runs on PostgreSQL"
)


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


def publish(driver: Driver, token: str, body, content_type: str = "application/json"):
    return driver.call("POST", EVENTS, token, data=json.dumps(body), content_type=content_type)


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_publish__warm_caller__stored_and_answered_by_the_hot_path(driver, issue_token):
    token = issue_token("events:write")

    first = publish(driver, token, {"type": "order.created", "source": "/shop", "id": "a", "data": {"n": 1}})
    second = publish(driver, token, {"type": "order.created", "source": "/shop", "id": "b", "data": {"n": 2}})
    again = publish(driver, token, {"type": "order.created", "source": "/shop", "id": "b", "data": {"n": 2}})

    assert (first.hot, second.hot, again.hot) == (False, True, True)
    assert (first.status, second.status, again.status) == (201, 201, 200)
    assert second.headers.keys() == first.headers.keys()
    assert second.json()["events"][0] | {"id": 0} == {
        "id": 0,
        "event_id": "b",
        "source": "/shop",
        "duplicate": False,
    }
    assert again.json()["duplicates"] == 1
    assert Event.objects.get(source="/shop", event_id="b").data == {"n": 2}


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_publish__structured_and_batch_modes__hot(driver, issue_token):
    token = issue_token("events:write")
    event = {"specversion": "1.0", "type": "order.created", "source": "/shop", "id": "s1"}
    publish(driver, token, {"type": "warm.up", "source": "/shop"})

    structured = publish(driver, token, event, "application/cloudevents+json")
    batch = publish(
        driver, token, [event | {"id": "s2"}, event | {"id": "s3"}], "application/cloudevents-batch+json"
    )

    assert (structured.hot, structured.status) == (True, 201)
    assert (batch.hot, batch.status, batch.json()["created"]) == (True, 201, 2)


@pytest.mark.django_db
def test_publish__invalid_batch__the_full_views_400_naming_the_index(driver, issue_token):
    token = issue_token("events:write")
    publish(driver, token, {"type": "warm.up", "source": "/shop"})
    bad = [{"type": "order.created", "source": "/shop"}, {"type": "", "source": "/shop"}]

    reply = publish(driver, token, bad)

    assert not reply.hot
    assert reply.comparable() == publish(Driver([]), token, bad).comparable()
    assert reply.status == 400 and reply.json()["error"]["details"]["errors"][0]["index"] == 1
    assert not Event.objects.filter(type="order.created").exists()


@pytest.mark.django_db
def test_publish__type_the_policy_refuses__403_from_the_full_view(driver, issue_token):
    token = issue_token("events:write")
    role = role_create(name="orders-only")
    rule_create(role=role, resource="events:order.*", action="write", effect="allow", priority=0)
    binding_create(role=role, account=Account.objects.order_by("-id").first())
    publish(driver, token, {"type": "order.created", "source": "/shop"})

    reply = publish(driver, token, {"type": "billing.paid", "source": "/shop"})

    assert not reply.hot
    assert (reply.status, reply.json()["error"]["code"]) == (403, "policy_denied")


@pytest.mark.skipif(connection.vendor == "postgresql", reason="without group commit")
@pytest.mark.django_db
def test_publish__sqlite__every_publish_goes_through_the_full_view_parsed_once(
    driver, issue_token, monkeypatch
):
    parsed_by_the_hot_path: list[bytes] = []
    monkeypatch.setattr(hot, "parse_request", lambda headers, body: parsed_by_the_hot_path.append(body))
    token = issue_token("events:write")

    replies = [publish(driver, token, {"type": "order.created", "source": "/shop"}) for _ in range(2)]

    assert [(reply.hot, reply.status) for reply in replies] == [(False, 201), (False, 201)]
    assert parsed_by_the_hot_path == []


@pytest.mark.django_db
def test_publish__body_over_64_kib__goes_straight_to_the_full_view(issue_token):
    seen: list[bytes] = []
    route = dataclasses.replace(hot.ROUTES[0], handler=lambda request: seen.append(request.body))
    driver = Driver([route])
    token = issue_token("events:write")
    small = {"type": "order.created", "source": "/shop"}
    large = [small | {"data": "x" * 1000} for _ in range(hot.MAX_BODY // 1000)]

    replies = [publish(driver, token, body) for body in (small, small, large)]

    assert [reply.status for reply in replies] == [201, 201, 201]
    assert seen == [json.dumps(small).encode()]  # the warm small one only: the large one is not read


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_publish__hot_write_fails_after_commit__the_fall_through_stores_no_event_twice(
    driver, issue_token, monkeypatch
):
    # Given a warm caller, and a group write that commits, then fails (the connection drops)
    token = issue_token("events:write")
    publish(driver, token, {"type": "warm.up", "source": "/shop"})
    real, failures = grouping.store_grouped, []

    def commit_then_fail(events):
        stored = real(events)
        if not failures:
            failures.append(events)
            raise OperationalError("the connection dropped after the commit")
        return stored

    monkeypatch.setattr(grouping, "store_grouped", commit_then_fail)

    # When an event without an id is published: the hot route fails and falls through
    reply = publish(driver, token, {"type": "order.created", "source": "/orders", "data": {"n": 1}})

    # Then the full view wrote the same event (same id): acknowledged as a duplicate, stored once
    assert failures and not reply.hot
    assert (reply.status, reply.json()["duplicates"]) == (200, 1)
    assert Event.objects.filter(source="/orders").count() == 1
