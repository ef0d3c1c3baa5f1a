"""CloudEvents on hostile input: every mode (native, structured, batch, binary) parses to events or
refuses with ``InvalidEvents``/``UnsupportedMediaType``, never another exception; through the API
the answer is 200/201 or a documented 4xx in the error shape, never a 5xx, and a refused request
stores nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from event_app import hot
from event_app.cloudevents import (
    BATCH,
    STRUCTURED,
    EventIn,
    InvalidEvents,
    UnsupportedMediaType,
    parse_request,
)
from event_app.models import Event
from tests.hotpath import Driver

EVENTS = "/api/v1/events/"

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
#: Text that is almost an attribute: names, sources, times, NUL and surrogates, very long.
ATTRIBUTE = st.one_of(
    st.sampled_from(
        ["1.0", "0.3", "", "order.created", "/shop", "2026-01-31T12:00:00Z", "\x00", "\ud800", "a" * 600]
    ),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z"),
    st.text(max_size=40),
    JSON,
)
EXTENSION_NAME = st.one_of(
    st.sampled_from(["rootid", "traceparent", "root_id", "metadata", "extensions", "tenant", "id", "data"]),
    st.from_regex(r"\A[a-z0-9]{1,22}\Z"),
    st.text(max_size=8),
)
#: A valid event (so that most requests reach the database) with hostile attributes over it.
VALID = st.fixed_dictionaries(
    {"type": st.text(min_size=1, max_size=20), "source": st.text(min_size=1, max_size=20)},
    optional={
        "specversion": st.just("1.0"),
        "id": st.text(min_size=1, max_size=30),
        "time": st.datetimes(timezones=st.timezones()).map(lambda when: when.isoformat()),
        "data": JSON,
        "subject": st.text(max_size=30),
    },
)
HOSTILE = st.fixed_dictionaries(
    {},
    optional={
        name: ATTRIBUTE
        for name in (
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "dataschema",
            "data",
            "data_base64",
        )
    },
)
EVENT = st.builds(
    lambda valid, hostile, extensions: {**valid, **extensions, **hostile},
    VALID,
    st.one_of(st.just({}), HOSTILE),
    st.dictionaries(EXTENSION_NAME, ATTRIBUTE, max_size=3),
)
CONTENT_TYPES = st.one_of(
    *[
        st.sampled_from(
            [
                "",
                "application/json",
                "text/json",
                STRUCTURED,
                BATCH,
                "application/json; charset=utf-8",
                "text/plain",
                "text/plain; charset=latin-1",
                "text/plain; charset=nonsense",
                "text/plain; charset=",
                "application/octet-stream",
                "application/xml",
                "application/vnd.x+json",
            ]
        )
    ]
    * 4,
    st.text(max_size=30),
)
#: A header value as a WSGI server hands it over: latin-1, no line breaks.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
BINARY_HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-time",
            "ce-subject",
            "ce-dataschema",
            "ce-rootid",
            "ce-traceparent",
            "ce-tenant",
            "ce-data",
            "ce-data_base64",
            "ce-Bad_Name",
        ]
    ),
    st.one_of(HEADER_TEXT, st.sampled_from(["1.0", "%00", "%ff%fe", "%E2%82%AC", "2026-01-31T12:00:00Z"])),
    max_size=8,
)


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(body_of),
    EVENT.map(body_of),
    st.lists(EVENT, max_size=4).map(body_of),
    st.sampled_from([b"NaN", b"[1e400]", b'{"data": Infinity}', b"[" * 5000, b'"\\ud800"', b"\xff\xfe"]),
)
JSON_TYPES = st.sampled_from(["", "application/json", "application/json; charset=utf-8", STRUCTURED])
BINARY_CORE = st.fixed_dictionaries(
    {
        "ce-specversion": st.just("1.0"),
        "ce-id": st.from_regex(r"\A[A-Za-z0-9%-]{1,20}\Z"),
        "ce-source": st.from_regex(r"\A[/A-Za-z0-9%]{1,20}\Z"),
        "ce-type": st.from_regex(r"\A[a-z.%0-9]{1,20}\Z"),
    }
)
#: (headers, body) of one request, in each mode: mostly events, some junk.
REQUESTS = st.one_of(
    st.tuples(JSON_TYPES.map(lambda ct: {"content-type": ct}), EVENT.map(body_of)),
    st.tuples(
        st.sampled_from(["", "application/json", BATCH]).map(lambda ct: {"content-type": ct}),
        st.lists(EVENT, max_size=4).map(body_of),
    ),
    st.tuples(
        st.tuples(BINARY_CORE, BINARY_HEADERS, CONTENT_TYPES).map(
            lambda parts: {**parts[0], **parts[1], "content-type": parts[2]}
        ),
        st.one_of(BODIES, st.text(max_size=50).map(str.encode)),
    ),
    st.tuples(CONTENT_TYPES.map(lambda ct: {"content-type": ct}), BODIES),
)


@settings(max_examples=1500, deadline=None)
@given(REQUESTS)
def test_parse_request__any_headers_and_body__events_or_a_refusal(request):
    headers, body = request
    try:
        events, _ = parse_request(headers, body)
    except (InvalidEvents, UnsupportedMediaType) as exc:
        event(type(exc).__name__)
        return
    event("parsed")
    assert events and all(isinstance(event, EventIn) for event in events)
    for parsed in events:
        assert parsed.source and parsed.type and parsed.event_id
        assert parsed.specversion == "1.0"


# --- Through the API: the full view (the hot route passes whatever does not parse to it) -----------


@pytest.mark.django_db
def test_publish__any_request__stored_or_refused_in_the_error_shape(api_client):
    publisher = api_client("events:write")

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(REQUESTS)
    def publish(request):
        headers, body = request
        before = Event.objects.count()
        extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
        content_type = extra.pop("HTTP_CONTENT_TYPE", "")

        response = publisher.generic("POST", EVENTS, body, content_type=content_type, **extra)
        event(f"status {response.status_code}")

        assert response.status_code in (200, 201, 400, 413, 415), (response.status_code, response.content)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
            assert Event.objects.count() == before
        else:
            assert response.json()["events"]

    publish()


# --- Through the hot path (PostgreSQL: the group writer stores what parses, the view the rest) ----


@pytest.mark.skipif(connection.vendor != "postgresql", reason="group commit runs on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_publish_hot__any_request__stored_or_refused_as_the_full_view_does(issue_token):
    driver = Driver(hot.ROUTES)
    token = issue_token("events:write")
    warm = driver.call("POST", EVENTS, token, data=b'{"type": "warm.up", "source": "/s"}', content_type="")
    assert warm.status == 201

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(REQUESTS)
    def publish(request):
        headers, body = request
        headers = dict(headers)
        content_type = headers.pop("content-type", "")
        before = Event.objects.count()

        reply = driver.call("POST", EVENTS, token, data=body, content_type=content_type, headers=headers)
        event(f"{'hot' if reply.hot else 'view'} {reply.status}")

        assert reply.status in (200, 201, 400, 413, 415), (reply.status, reply.body)
        if reply.status >= 400:
            assert set(reply.json()["error"]) == {"code", "message", "details"}
            assert Event.objects.count() == before
        else:
            assert reply.json()["events"]

    publish()


# --- Search: any query string --------------------------------------------------------------------

QUERY_KEYS = st.sampled_from(
    [
        *("type", "source", "subject", "root_id", "from", "to", "after", "before", "order", "cursor"),
        *("limit", "ext.tenant", "metadata.region", "ext.", "ext.a.b", "x"),
    ]
)
QUERY_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["order.*", "*", "", ",", "1", "-1", "9" * 30, "²", "2026-01-01T00:00:00+23:59"]),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)\Z"),
)


@pytest.mark.django_db
def test_search__any_query__results_or_400(api_client, make_event):
    reader = api_client("events:read")
    make_event(subject="orders/1", extensions={"tenant": "acme"})

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=5))
    def search(pairs):
        query = "&".join(f"{quote(key)}={quote(value)}" for key, value in pairs)
        response = reader.get(f"{EVENTS}?{query}")
        event(f"status {response.status_code}")
        # 404: a cursor that is not one (the platform's pagination, as on every list)
        assert response.status_code in (200, 400, 404), (query, response.status_code, response.content)
        if response.status_code == 404:
            assert "cursor" in query
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}

    search()
