"""The events admin screens load for an operator (with data in them)."""

from __future__ import annotations

import pytest

from event_app.models import Delivery, Subscription

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["event", "subscription", "delivery", "eventcount"])
def test_admin_changelist__with_rows__loads(admin_client, make_event, model):
    # given
    event = make_event("order.created", extensions={"region": "eu"})
    subscription = Subscription.objects.create(name="hook", url="http://127.0.0.1:9/", secret="s")
    Delivery.objects.create(subscription=subscription, event=event)
    # when
    listing = admin_client.get(f"/admin/event_app/{model}/")
    # then
    assert listing.status_code == 200


def test_admin_event_page__is_read_only(admin_client, make_event):
    event = make_event("order.created")
    assert admin_client.get(f"/admin/event_app/event/{event.pk}/change/").status_code == 200
    assert admin_client.get("/admin/event_app/event/add/").status_code == 403


def test_admin_eventcount__derived_counters_are_view_only(admin_client, make_event):
    from event_app.models import EventCount

    make_event("order.created")  # counted on publish
    row = EventCount.objects.first()
    change = f"/admin/event_app/eventcount/{row.pk}/change/"
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.get("/admin/event_app/eventcount/add/").status_code == 403
    assert admin_client.post(change, {"count": 999}).status_code == 403
    assert (
        admin_client.post(f"/admin/event_app/eventcount/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    listing = admin_client.get("/admin/event_app/eventcount/").content.decode()
    assert "delete_selected" not in listing
    row.refresh_from_db()
    assert row.count == 1
