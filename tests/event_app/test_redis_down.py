"""Events while Redis is known down (platformsite.cache.Guard): a publish is refused (its live push
needs Redis); a subscription change is refused whole, so that no cached filter list outlives it."""

from __future__ import annotations

import logging
from unittest import mock

import pytest

from event_app import selectors, services
from event_app.models import Delivery, Event, Subscription
from tests.redis_down import NEEDS_REDIS, redis_known_down

pytestmark = NEEDS_REDIS

SUBS = "/api/v1/events/subscriptions/"


def subscribe(name="orders-hook", **fields):
    return services.subscription_create(name=name, types=["order.*"], url="http://127.0.0.1:9/hook", **fields)


def test_publish__redis_known_down__503_and_nothing_stored(publisher):
    # an event stored now could not be pushed to the live stream, and a subscriber that then
    # heard a later event would never be sent it: the publisher keeps it and retries
    subscribe()
    selectors._forget_local_filters()
    with redis_known_down(), mock.patch("platformsite.tasks.dispatch"):
        response = publisher.post("/api/v1/events/", {"type": "order.a", "source": "/shop"}, format="json")
    assert response.status_code == 503, response.content
    assert not Event.objects.exists() and not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["create", "update", "delete"])
def test_subscription_change__redis_known_down__503_and_nothing_changed(operator, change):
    # given: the change could not drop the cached filters, which would then outlive it once Redis
    # is back (a deactivated subscription still delivered to, a new one not)
    subscribe(name="kept")
    before = list(Subscription.objects.values_list("name", "is_active", "types"))
    # when
    with redis_known_down():
        if change == "create":
            response = operator.post(
                SUBS, {"name": "new", "types": ["x.*"], "url": "http://127.0.0.1:9/x"}, format="json"
            )
        elif change == "update":
            response = operator.patch(f"{SUBS}kept/", {"is_active": False}, format="json")
        else:
            response = operator.delete(f"{SUBS}kept/")
    # then
    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert list(Subscription.objects.values_list("name", "is_active", "types")) == before


@pytest.mark.django_db(transaction=True)
def test_subscription_change__redis_gone_after_the_first_drop__stored_and_answered(operator, caplog):
    # given Redis answers the drop made inside the transaction, then is found down after the commit
    real = selectors.forget_webhook_filters_again

    def down_after_commit():
        with redis_known_down():
            real()

    # when
    with (
        mock.patch.object(selectors, "forget_webhook_filters_again", down_after_commit),
        caplog.at_level(logging.WARNING, logger="event_app.selectors"),
    ):
        response = operator.post(
            SUBS, {"name": "new", "types": ["x.*"], "url": "http://127.0.0.1:9/x"}, format="json"
        )
    # then: the change is stored, so it is answered as such, and the missed drop is logged
    assert response.status_code == 201, response.content
    assert Subscription.objects.filter(name="new").exists()
    assert "could not be dropped after a change" in caplog.text
