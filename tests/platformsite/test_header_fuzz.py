"""Request headers on hostile input, through the WSGI application as served (the hot path in front
of Django): any ``Authorization``, ``Accept``, ``Content-Type``, ``If-Match``, ``If-None-Match``,
``X-Request-ID`` and ``X-Forwarded-For`` give an answer or a 4xx, never a 5xx; a refusal is in
the error shape, and a request id that comes back is one the platform accepts.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from platformsite.services import hot_routes
from tests.hotpath import Driver

#: A header value as a WSGI server hands it over: latin-1, no line breaks.
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.one_of(
            TEXT,
            st.sampled_from(["Bearer", "Bearer ", "Bearer  x", "Basic x", "bearer TOKEN", "Bearer TOKEN x"]),
            TEXT.map(lambda t: "Bearer " + t),
        ),
        "Accept": st.one_of(
            TEXT, st.sampled_from(["*/*", "text/html", "application/xml", "application/json;q=0", ""])
        ),
        "If-Match": st.one_of(
            TEXT, st.sampled_from(['"1"', '"-1"', '"99999999999999999999999"', "*", '"²"'])
        ),
        "If-None-Match": TEXT,
        "X-Request-ID": TEXT,
        "X-Forwarded-For": st.one_of(TEXT, st.sampled_from(["1.2.3.4, 5.6.7.8", "::1", "x" * 60])),
    },
)
REQUESTS = [
    ("GET", "/api/v1/config/namespaces/app/resolve", None),
    ("PUT", "/api/v1/config/namespaces/app/layers/prod/", b'{"data": {"a": 1}}'),
    ("GET", "/api/v1/discovery/services/web/", None),
    ("POST", "/api/v1/events/", b'{"type": "a.b", "source": "/s"}'),
    ("GET", "/api/v1/events/", None),
    ("GET", "/api/v1/auth/whoami/", None),
    ("POST", "/o/token/", b"grant_type=client_credentials"),
]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,200}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_any_headers__answer_or_4xx(method, path, body, api_client, issue_token):
    admin = api_client("admin")
    admin.post("/api/v1/config/namespaces/", {"name": "app"}, format="json")
    admin.put("/api/v1/config/namespaces/app/layers/prod/", {"data": {"a": 1}}, format="json")
    token = issue_token("admin")
    driver = Driver(hot_routes())

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(HEADERS, st.booleans())
    def call(headers, with_token):
        headers = dict(headers)
        if with_token:  # half the calls: a valid token with the other hostile headers
            headers["Authorization"] = f"Bearer {token}"
        content_type = headers.pop("Content-Type", None) or (
            "application/x-www-form-urlencoded" if path.startswith("/o/") else "application/json"
        )
        extra = {"data": body, "content_type": content_type} if body is not None else {}
        reply = driver.call(method, path, headers=headers, **extra)
        event(f"{'hot' if reply.hot else 'django'} {reply.status}")
        assert reply.status < 500, (headers, reply.status, reply.body[:300])
        if reply.status >= 400 and reply.headers.get("Content-Type", "").startswith("application/json"):
            answer = reply.json()
            assert "error" in answer, reply.body[:300]  # the platform's shape, or OAuth2's at /o/
        assert _REQUEST_ID.fullmatch(reply.headers.get("X-Request-ID", "")), reply.headers

    call()
