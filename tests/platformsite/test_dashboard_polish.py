"""What every dashboard shares: one time format, one breadcrumb, labelled controls, hints that read
as hints, the favicon; and the config, discovery and events pages' own controls."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from platformsite.templatetags.platform_ui import utc

pytestmark = pytest.mark.django_db

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def published(api_client):
    """Events ``order.created`` (the root) and ``order.paid`` of one flow; returns the root's id."""
    caller = api_client("admin")
    root = {"specversion": "1.0", "id": "flow-1", "source": "/shop", "type": "order.created"}
    assert caller.post("/api/v1/events/", root, format="json").status_code == 201
    paid = {**root, "id": "flow-2", "type": "order.paid", "rootid": "flow-1"}
    assert caller.post("/api/v1/events/", paid, format="json").status_code == 201
    from event_app.models import Event

    return Event.objects.get(event_id="flow-1").pk


@pytest.fixture
def registered(api_client):
    """Service ``orders`` with two nodes, one of them critical; ``billing`` with one passing."""
    from discovery_app.models import Node

    caller = api_client("admin")
    for node_id, service in (("orders-1", "orders"), ("orders-2", "orders"), ("billing-1", "billing")):
        node = {"id": node_id, "service": service, "address": "10.0.0.1", "port": 8000}
        assert caller.post("/api/v1/discovery/nodes/", node, format="json").status_code == 201
    Node.objects.filter(id="orders-2").update(status=Node.Status.CRITICAL)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC), "2026-12-04T10:00:00Z"),
        (datetime(2026, 12, 4, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))), "2026-12-04T10:00:00Z"),
        ("2026-12-04T10:00:00.826435Z", "2026-12-04T10:00:00Z"),
        ("2026-12-04T10:00:00+00:00", "2026-12-04T10:00:00Z"),
        (1796378400.5, "2026-12-04T10:00:00Z"),
        (None, ""),
        ("not a time", "not a time"),
    ],
)
def test_utc_filter__writes_utc_to_the_second_with_z(value, shown):
    assert utc(value) == shown


def test_times__on_events_and_discovery_pages__are_utc_to_the_second_with_z(operator, published, registered):
    for url in ("/ui/events/", f"/ui/events/{published}/", "/ui/discovery/orders/"):
        page = operator.get(url).content.decode()
        times = TIME.findall(page)
        assert times, url
        assert [time for time in times if not UTC_SECONDS.fullmatch(time)] == [], url


def test_time_formatter__is_loaded_on_every_dashboard_and_used_by_the_live_tables(operator):
    from django.contrib.staticfiles import finders

    assert '<script src="/static/platformsite/time.js"></script>' in operator.get("/ui/").content.decode()
    assert "window.platformTime(event.time)" in operator.get("/ui/events/").content.decode()
    with open(finders.find("config_app/config.js"), encoding="utf-8") as script:
        assert "window.platformTime(rev.created)" in script.read()


@pytest.mark.parametrize(
    ("url", "service", "current"),
    [
        ("/ui/config/payments/", "config", "payments"),
        ("/ui/discovery/orders/", "discovery", "orders"),
        ("/ui/events/{event}/", "events", "{event}"),
    ],
)
def test_detail_pages__share_one_breadcrumb_overview_service_item(
    operator, api_client, published, registered, url, service, current
):
    api_client("admin").post("/api/v1/config/namespaces/", {"name": "payments"}, format="json")
    url, current = url.format(event=published), current.format(event=published)

    page = operator.get(url).content.decode()

    assert (
        '<nav class="breadcrumb" aria-label="Breadcrumb"><a href="/ui/">overview</a> / '
        f'<a href="/ui/{service}/">{service}</a> / <span aria-current="page">{current}</span></nav>'
    ) in page


def test_config_page__other_environment_is_a_labelled_form_that_shows_it(operator, api_client):
    api_client("admin").post("/api/v1/config/namespaces/", {"name": "payments"}, format="json")

    page = operator.get("/ui/config/payments/").content.decode()
    assert '<label for="env-other">Another environment</label>' in page
    assert re.search(r'<form method="get" id="env-other-form"[^>]*>', page)
    assert 'placeholder="e.g. staging"' in page

    # An environment with no layer yet is shown, and offered in both environment lists
    staging = operator.get("/ui/config/payments/?env=staging").content.decode()
    assert 'data-env="staging"' in staging
    assert '<code id="resolved-env">staging</code>' in staging
    assert staging.count('<option value="staging" selected>staging</option>') == 2


def test_config_page__invalid_environment__is_refused_with_a_reason(operator, api_client):
    api_client("admin").post("/api/v1/config/namespaces/", {"name": "payments"}, format="json")

    page = operator.get("/ui/config/payments/?env=Not%20An%20Env").content.decode()

    assert 'id="env-error"' in page and "is not an environment name" in page
    assert 'data-env="default"' in page


def test_discovery_index__service_with_fewer_passing_than_nodes__is_highlighted(operator, registered):
    page = operator.get("/ui/discovery/").content.decode()

    orders = page.split('data-service="orders"', 1)[1].split("</tr>", 1)[0]
    billing = page.split('data-service="billing"', 1)[1].split("</tr>", 1)[0]
    assert orders.startswith(' class="not-passing"') and "1 not passing" in orders
    assert "not-passing" not in billing and "not passing" not in billing


def test_events_page__fields_are_labelled_and_placeholders_read_as_hints(operator):
    page = operator.get("/ui/events/").content.decode()

    inputs = [field for field in re.findall(r"<input\b[^>]*>", page) if 'type="hidden"' not in field]
    assert len(inputs) == 9  # three live-tail filters and six search fields
    for field in inputs:
        field_id = re.search(r'id="([^"]+)"', field).group(1)
        assert f'<label for="{field_id}">' in page, field_id
        placeholder = re.search(r'placeholder="([^"]+)"', field).group(1)
        assert placeholder.startswith("e.g. ") or " " in placeholder, placeholder
    for name in ("type", "from", "to"):
        assert re.search(rf'id="search-{name}" value="" placeholder="e\.g\. ', page), name


def test_admin__lists_deliveries_not_deliverys(admin_client):
    from event_app.models import Delivery

    assert Delivery._meta.verbose_name_plural == "deliveries"
    page = admin_client.get("/admin/").content.decode()
    assert ">Deliveries<" in page and "Deliverys" not in page


def test_favicon__is_linked_from_every_page_and_served_at_favicon_ico(operator):
    page = operator.get("/ui/").content.decode()
    assert '<link rel="icon" type="image/svg+xml" href="/static/platformsite/favicon.svg">' in page

    response = operator.get("/favicon.ico", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/static/platformsite/favicon.svg"
    assert b"<svg" in b"".join(response.streaming_content if response.streaming else [response.content])


@pytest.mark.parametrize(
    "path", ["/ui/monitor/nosuch/", "/ui/db/nosuch/", "/ui/trace/0af7651916cd43dd/", "/ui/nope/"]
)
def test_unknown_dashboard_page__a_404_in_the_dashboards_frame(operator, path):
    response = operator.get(path)

    page = response.content.decode()
    assert response.status_code == 404
    assert 'id="not-found"' in page and 'aria-label="Services"' in page  # the navigation stays


def test_a_query_a_page_cannot_read__a_400_in_the_dashboards_frame(operator):
    response = operator.get("/ui/trace/0af7651916cd43dd/?raw=maybe")

    assert response.status_code == 400 and 'id="bad-request"' in response.content.decode()
