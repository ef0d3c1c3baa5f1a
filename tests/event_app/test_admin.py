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


def _subscription_form(**changes) -> dict:
    form = {"name": "hook", "owner": "", "types": '["order.*"]', "sources": "[]", "subject_prefix": ""}
    form.update({"sink": "webhook", "url": "https://hooks.example.com/in", "is_active": "on"})
    form.update(changes)
    return form


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"types": '[["a"]]'}, "A JSON list of strings"),
        ({"types": "5"}, "A JSON list of strings"),
        ({"sources": '{"a": 1}'}, "A JSON list of strings"),
        ({"url": "ftp://hooks.example.com/in"}, "http or https"),
        ({"url": "http://127.0.0.1:9/"}, "loopback"),
        ({"sink": "websocket"}, "A websocket subscription has no URL"),
    ],
)
def test_admin_subscription_form__refuses_what_the_api_refuses(admin_client, settings, changes, error):
    settings.PLATFORM_ALLOW_PRIVATE_TARGETS = False
    response = admin_client.post("/admin/event_app/subscription/add/", _subscription_form(**changes))
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Subscription.objects.exists()


def test_admin_subscription__publishes_see_it_at_once_and_it_is_signed(
    admin_client, make_event, django_capture_on_commit_callbacks
):
    # given: a publish has cached the (empty) webhook filters
    make_event("order.created")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/event_app/subscription/add/", _subscription_form())
    make_event("order.paid")
    # then
    assert response.status_code == 302
    subscription = Subscription.objects.get(name="hook")
    assert subscription.secret.startswith("whsec_")
    # shown once, as the API's answer shows it: nothing else tells the receiver the secret
    shown = [str(message) for message in response.wsgi_request._messages]
    assert f"Signing secret of hook (shown once): {subscription.secret}" in shown
    assert Delivery.objects.filter(subscription=subscription, event__type="order.paid").exists()
    # and when deleted, the next publish no longer matches it
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(f"/admin/event_app/subscription/{subscription.pk}/delete/", {"post": "yes"})
    make_event("order.shipped")
    assert not Subscription.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("model", ["event", "delivery"])
def test_admin_events_and_deliveries__cannot_be_deleted_there(admin_client, make_event, model):
    """Only retention removes events (the chart's EventCount counters follow it); a deletion here
    left them counting events that were gone."""
    from event_app.models import Event, EventCount

    event = make_event("order.created")
    subscription = Subscription.objects.create(name="hook", url="http://127.0.0.1:9/", secret="s")
    delivery = Delivery.objects.create(subscription=subscription, event=event)
    row = {"event": event, "delivery": delivery}[model]
    listing = admin_client.get(f"/admin/event_app/{model}/").content.decode()
    assert "delete_selected" not in listing
    response = admin_client.post(f"/admin/event_app/{model}/{row.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    selected = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    admin_client.post(f"/admin/event_app/{model}/", selected)
    assert Event.objects.filter(pk=event.pk).exists() and Delivery.objects.filter(pk=delivery.pk).exists()
    assert sum(EventCount.objects.values_list("count", flat=True)) > 0
