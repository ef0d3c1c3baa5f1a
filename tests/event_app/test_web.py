"""/ui/events/: staff only; search form, counts chart, event detail with related events."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytestmark = pytest.mark.django_db


def test_ui_events__non_staff__sent_to_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice", password="pw-alice-123"))
    assert client.get("/ui/events/").status_code == 302


def test_ui_events__search_and_chart__show_matching_events(client, staff_user, make_event):
    # given
    make_event("order.created", subject="orders/1")
    make_event("user.created")
    client.force_login(staff_user)
    # when
    page = client.get("/ui/events/", {"type": "order.*"}).content.decode()
    # then
    assert "<polyline" in page and "order.created" in page
    results = page[page.index('id="results"') :]
    assert "orders/1" in results and "user.created" not in results


def test_chart__the_current_minute_is_its_own_dashed_segment(make_event, monkeypatch):
    from event_app import web
    from event_app.web import CHART_WIDTH, chart

    event = make_event("order.created")  # counted in the minute it was received: the current one
    monkeypatch.setattr(web.timezone, "now", lambda: event.received)  # however the clock moved on
    [line] = chart()["lines"]
    done, current = line["points"].split(" "), line["current"].split(" ")
    assert len(done) == 59 and current[0] == done[-1]  # the dashed segment continues the line
    x, y = current[1].split(",")
    assert float(x) == CHART_WIDTH and float(y) < float(done[-1].split(",")[1])  # up to this minute's count
    # the axis names the minutes at its edges (the right one was the end of the current minute)
    minute = event.received.replace(second=0, microsecond=0)
    assert (chart()["since"], chart()["last"]) == (minute - timedelta(minutes=59), minute)


def test_ui_events__bad_search__shows_error_not_500(client, staff_user):
    client.force_login(staff_user)
    response = client.get("/ui/events/", {"from": "yesterday"})
    assert response.status_code == 200
    assert 'id="search-error"' in response.content.decode()


def test_ui_event_detail__shows_data_and_related(client, staff_user, make_event):
    # given
    root = make_event("order.created", event_id="root-9", data={"total": 7})
    make_event("order.paid", root_id="root-9")
    client.force_login(staff_user)
    # when
    page = client.get(f"/ui/events/{root.pk}/").content.decode()
    # then
    assert "&quot;total&quot;: 7" in page
    assert "order.paid" in page[page.index('id="related"') :]


def test_ui_event_detail__unknown__404(client, staff_user):
    client.force_login(staff_user)
    assert client.get("/ui/events/999999/").status_code == 404


def test_ui_events__search_pages_to_older_events_and_says_how_many_are_shown(
    client, staff_user, make_event, monkeypatch
):
    from event_app import web

    monkeypatch.setattr(web, "PAGE", 3)
    made = [make_event("order.created", subject=f"orders/{i}").pk for i in range(5)]
    make_event("user.created")
    client.force_login(staff_user)
    first = client.get("/ui/events/", {"type": "order.*"}).content.decode()
    assert "3 events shown, newest first." in first and 'id="newest-link"' not in first
    older = f'href="?type=order.%2A&amp;before={made[2]}" id="older-link"'
    assert older in first
    second = client.get("/ui/events/", {"type": "order.*", "before": made[2]}).content.decode()
    results = second[second.index('id="results"') :]
    assert "orders/1<" in results and "orders/0<" in results and "orders/2<" not in results
    assert f"2 events shown, newest first (older than event {made[2]}); no older one matches." in second
    assert 'id="older-link"' not in second and 'href="?type=order.%2A" id="newest-link"' in second
    assert 'id="search-error"' in client.get("/ui/events/", {"before": "x"}).content.decode()


@pytest.mark.parametrize(
    ("traceparent", "link"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "/ui/trace/4bf92f3577b34da6a3ce929d0e0e4736/",
        ),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", ""),  # all-zero trace id: invalid
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""),  # version ff: invalid
        ("not a traceparent", ""),
    ],
)
def test_ui_event_detail__traceparent_links_to_its_trace(client, staff_user, make_event, traceparent, link):
    event = make_event("order.created", traceparent=traceparent)
    client.force_login(staff_user)
    page = client.get(f"/ui/events/{event.pk}/").content.decode()
    assert f"<code>{traceparent}</code>" in page
    if link:
        assert f'<a href="{link}" id="trace-link">' in page
    else:
        assert 'id="trace-link"' not in page
