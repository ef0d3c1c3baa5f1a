"""Every dashboard page on any query string, as a signed-in staff user: a page, a redirect or a
4xx, never a 5xx.  The pages read their forms' fields from the query (time ranges, searches,
environments, cursors); the names are theirs and the values anything a browser can send."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from event_app.models import Event
from tests.platformsite.test_body_fuzz import seed
from tests.platformsite.test_security import dashboard_paths

NAMES = [
    *("a", "b", "cursor", "env", "fragment", "hours", "q", "raw", "service", "operation", "tag", "word"),
    *("min_ms", "max_ms", "error", "type", "source", "subject", "select", "order", "limit", "status"),
]
VALUES = st.one_of(
    st.text(max_size=25),
    st.sampled_from(["", "0", "-1", "²", "9" * 40, "1e400", "NaN", "\x00", "*", "a=b", "0" * 32, "prod"]),
)
#: Pages of one resource -> the page of the resource ``seed`` stores.
SEEDED = {
    "/ui/config/sample/": "/ui/config/app/",
    "/ui/db/sample/": "/ui/db/web/",
    "/ui/db/sample/sample/": "/ui/db/web/web/",
    "/ui/discovery/sample/": "/ui/discovery/web/",
    "/ui/monitor/sample/": "/ui/monitor/web/",
    "/ui/router/sample/": "/ui/router/web/",
    "/ui/trace/sample/": "/ui/trace/" + "0" * 31 + "1/",
}

#: Pages with nothing to show here: sign-in and sign-out (redirects), an unknown service, a trace
#: and a monitored service that were never stored.
UNREACHED = {"/ui/login/", "/ui/logout/", "/ui/sample/", "/ui/monitor/web/", SEEDED["/ui/trace/sample/"]}


@pytest.mark.django_db
@pytest.mark.parametrize("path", [SEEDED.get(path, path) for path in dashboard_paths()])
def test_any_query__a_page_or_4xx(path, staff_user, api_client):
    seed(api_client("admin"))
    if path == "/ui/events/1/":  # the newest event (ids are not reused on PostgreSQL)
        path = f"/ui/events/{Event.objects.latest('id').pk}/"
    browser = Client()
    browser.force_login(staff_user)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=4))
    def browse(pairs):
        query = "&".join(f"{quote(name)}={quote(value)}" for name, value in pairs)
        response = browser.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.status_code)
        SEEN.add(response.status_code)

    SEEN: set[int] = set()
    browse()
    # the page itself was reached (not only redirects and 404s), where there is one to reach
    assert path in UNREACHED or 200 in SEEN, SEEN
