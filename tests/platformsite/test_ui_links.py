"""Every link on the dashboards leads somewhere: no page a staff user can click to answers 404 or 500.

The walk starts at the home page and every service's dashboard (``/ui/<name>/``), with data in
config, discovery and events so their tables have rows to link from, and follows each link and
each stylesheet, script and icon those pages name.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest

from platformsite.services import all_services, served_services

pytestmark = pytest.mark.django_db


class Links(HTMLParser):
    """The same-site URLs a page links to (``<a href>``) and loads (``<link href>``, ``<script src>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "link": "href", "script": "src"}.get(tag)
        value = dict(attrs).get(wanted) if wanted else None
        if not value:
            return
        url, _ = urldefrag(value)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not url.startswith("/"):
            return  # another site, a mailto:, or a relative link (the dashboards write none)
        self.found.append(url)


def links_of(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.found


@pytest.fixture
def populated(api_client):
    """A namespace with a layer, two registered nodes and a published event."""
    caller = api_client("admin")
    assert caller.post("/api/v1/config/namespaces/", {"name": "payments"}, format="json").status_code == 201
    layer = {"data": {"timeout": 5}, "comment": "first"}
    response = caller.put("/api/v1/config/namespaces/payments/layers/default/", layer, format="json")
    assert response.status_code == 200
    for number in (1, 2):
        node = {"id": f"orders-{number}", "service": "orders", "address": "10.0.0.1", "port": 8000 + number}
        assert caller.post("/api/v1/discovery/nodes/", node, format="json").status_code == 201
    event = {"specversion": "1.0", "id": "e-1", "source": "/shop", "type": "order.created", "subject": "o/1"}
    assert caller.post("/api/v1/events/", event, format="json").status_code == 201


def walk(client) -> dict[str, int]:
    """The status of every URL linked from the home page and every service dashboard."""
    starts = ["/ui/", *(f"/ui/{service.name}/" for service in served_services())]
    statuses: dict[str, int] = {}
    for start in starts:
        response = client.get(start)
        statuses[start] = response.status_code
        if response.status_code != 200:
            continue
        for url in links_of(response.content.decode()):
            if url not in statuses:
                statuses[url] = client.get(url, follow=True).status_code
    return statuses


@pytest.mark.parametrize("superuser", [False, True], ids=["staff", "superuser"])
def test_dashboard_links__none_answers_404_or_500(client, django_user_model, populated, superuser):
    # Given a staff session (a superuser's also links to the admin)
    user = django_user_model.objects.create_user("operator", password="pw-operator-1", is_staff=True)
    user.is_superuser = superuser
    user.save()
    client.force_login(user)

    # When every link of the home page and of each service's dashboard is followed
    statuses = walk(client)

    # Then the walk reached the detail pages and the shared assets
    for url in ("/ui/config/payments/", "/ui/discovery/orders/", "/static/platformsite/platform.css"):
        assert url in statuses
    assert any(re.fullmatch(r"/ui/events/\d+/", url) for url in statuses)
    assert ("/admin/" in statuses) is superuser

    # And none of them is missing or broken
    assert {url: status for url, status in statuses.items() if status in {404, 500}} == {}
    assert all(status == 200 for status in statuses.values()), statuses


def test_home_page__marks_each_service_not_built_yet_by_its_declaration(client, staff_user):
    client.force_login(staff_user)

    page = client.get("/ui/").content.decode()

    for service in all_services():
        row = page.split(f'data-service="{service.name}"', 1)[1].split("</tr>", 1)[0]
        assert ("not built yet" in row) is (not service.built), service.name


def test_service_page_of_a_service_not_built__says_so_and_names_no_socket(client, staff_user):
    not_built = [service.name for service in all_services() if not service.built]
    if not not_built:
        pytest.skip("every service is built")
    client.force_login(staff_user)

    page = client.get(f"/ui/{not_built[0]}/").content.decode()

    assert 'id="not-built"' in page
    assert "/ws/" not in page


def navigation_of(page: str) -> str:
    return page.split('<nav aria-label="Services">', 1)[1].split("</nav>", 1)[0]


def test_navigation__lists_services_not_built_yet_under_their_own_label(client, staff_user):
    client.force_login(staff_user)

    nav = navigation_of(client.get("/ui/").content.decode())

    # The built services come first, then the label, then each service not built yet, greyed
    label = '<span class="nav-label">not built yet:</span>'
    if all(service.built for service in all_services()):
        assert label not in nav and 'class="not-built"' not in nav
        return
    built, not_built = nav.split(label, 1)
    for service in all_services():
        link = f'href="/ui/{service.name}/"'
        assert (link in not_built) is (not service.built), service.name
        assert (link in built) is service.built, service.name
    assert not_built.count('class="not-built"') == sum(not service.built for service in all_services())


@pytest.mark.parametrize(
    ("path", "section"), [("/ui/discovery/orders/", "discovery"), ("/ui/config/payments/", "config")]
)
def test_navigation__keeps_the_section_highlighted_on_its_sub_pages(
    client, staff_user, populated, path, section
):
    client.force_login(staff_user)

    nav = navigation_of(client.get(path).content.decode())

    assert f'<a href="/ui/{section}/" class="current">{section}</a>' in nav
    assert nav.count('class="current"') == 1
    assert 'aria-current="page"' not in nav  # the page itself is not in the navigation
