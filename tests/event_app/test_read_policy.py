"""Read rules over event types where a request names many types at once: a prefix (``order.*``),
every type, the counts, and each event a webhook is sent."""

from __future__ import annotations

import pytest

from event_app import services
from event_app.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events/"
SUBS = EVENTS + "subscriptions/"


def hook(name: str, types: list[str]) -> dict:
    return {"name": name, "url": "https://hooks.example.com/in", "types": types}


def reading_all_but(ruled_client, denied: str):
    """A client that may read every event type but those ``denied`` (a resource pattern)."""
    return ruled_client(
        "events:read",
        "events:write",
        rules=[
            {"resource": "events:*", "action": "read", "priority": 1},
            {"resource": denied, "action": "read", "effect": "deny", "priority": 10},
        ],
    )


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The types of the events webhooks are sent (each answered 200), in order."""
    types: list[str] = []

    def post(client, subscription, delivery):
        types.append(delivery.event.type)
        return 200, ""

    monkeypatch.setattr("event_app.services.subscriptions._post", post)
    return types


def test_a_rule_on_a_prefix__decides_a_filter_by_that_prefix(ruled_client, make_event):
    # order.* was checked as events:order, which a rule on events:order.* neither allowed nor denied
    make_event(type="order.created")
    narrowed = ruled_client(
        "events:read", "events:write", rules=[{"resource": "events:order.*", "action": "read"}]
    )
    assert narrowed.get(EVENTS, {"type": "order.*"}).status_code == 200
    assert narrowed.post(SUBS, hook("orders", ["order.*"]), format="json").status_code == 201
    assert narrowed.get(EVENTS, {"type": "bill.*"}).status_code == 403
    denied = reading_all_but(ruled_client, "events:order.*")
    assert denied.get(EVENTS, {"type": "order.*"}).status_code == 403
    assert denied.post(SUBS, hook("leak", ["order.*"]), format="json").status_code == 403
    assert not Subscription.objects.filter(name="leak").exists()


def test_summary__counts_only_the_types_the_caller_may_read(ruled_client, make_event):
    make_event(type="order.created")
    make_event(type="auth.login")
    caller = ruled_client("events:read", rules=[{"resource": "events:order.*", "action": "read"}])
    by_type = caller.get(EVENTS + "summary/", {"group_by": "type"})
    assert by_type.status_code == 200, by_type.content
    assert [s["key"] for s in by_type.json()["series"]] == ["order.created"]
    # by source, counts mix every type: for a caller that may read every type
    assert caller.get(EVENTS + "summary/", {"group_by": "source"}).status_code == 403


def test_webhook__an_event_its_owner_may_not_read__is_a_dead_letter_never_sent(
    ruled_client, make_event, sent
):
    # a subscription of every type (or a prefix) took the types a rule denied one by one
    owner = reading_all_but(ruled_client, "events:order.refund")
    assert owner.post(SUBS, hook("everything", []), format="json").status_code == 201
    subscription = Subscription.objects.get(name="everything")
    for kind in ("order.created", "order.refund"):
        make_event(type=kind)  # each queued for the subscription

    services.subscription_deliver(subscription_id=subscription.pk)

    assert sent == ["order.created"]
    refused = Delivery.objects.get(event__type="order.refund")
    assert refused.status == "dead" and refused.last_error.startswith("policy_denied:")


def test_webhook__a_subscription_made_by_active_staff__is_delivered_every_type(make_event, staff_user, sent):
    subscription = Subscription.objects.create(
        name="ops", url="https://hooks.example.com/in", owner=f"user:{staff_user.username}"
    )
    make_event(type="order.refund")

    services.subscription_deliver(subscription_id=subscription.pk)

    assert sent == ["order.refund"]
