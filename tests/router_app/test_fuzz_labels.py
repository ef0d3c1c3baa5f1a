"""Request labels on hostile input: any ``X-Micro-Label-<key>`` headers and ``?labels=`` query give
the routes (200), a 400 ``invalid_labels`` in the error shape, or 404 for an unknown service; never
a 5xx.  Labels that are valid are honoured: the answer is the same as with the labels in the query.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router_app.services import LABEL_KEY, LABEL_VALUE

ROUTES = "/api/v1/router/routes/{}/"
#: A header value as a WSGI server hands it over: latin-1, no line breaks.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=30)
KEY = st.one_of(
    st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,20}\Z"),
    st.text(alphabet="abcXYZ019.-_", min_size=1, max_size=70),
    st.sampled_from(["", "-", ".", "a" * 64, "A"]),
)
VALUE = st.one_of(st.from_regex(r"\A[!-+\--~]{1,20}\Z"), HEADER_TEXT, st.just("x" * 201))
HEADERS = st.dictionaries(KEY, VALUE, max_size=22)
QUERY = st.one_of(
    st.just(None),
    st.lists(st.tuples(KEY, VALUE), max_size=5).map(lambda pairs: ",".join(f"{k}:{v}" for k, v in pairs)),
    st.text(max_size=40),
)


def environ_of(headers: dict[str, str]) -> dict[str, str]:
    return {"HTTP_X_MICRO_LABEL_" + key.upper().replace("-", "_"): value for key, value in headers.items()}


def timeless(routes: dict) -> dict:
    return {key: value for key, value in routes.items() if key not in {"generated", "expires"}}


def valid(headers: dict[str, str]) -> bool:
    keys = {key.lower().replace("_", "-") for key in headers}
    values = [value.strip() for value in headers.values()]
    return (
        len(keys) <= 20
        and all(LABEL_KEY.matches(key) for key in keys)
        and all(LABEL_VALUE.matches(value) for value in values)
    )


@pytest.mark.django_db
def test_routes__any_label_headers_and_query__routes_or_400(reader, make_node):
    make_node("orders", metadata={"zone": "a"})

    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(HEADERS, QUERY, st.sampled_from(["orders", "unknown", "bad name"]))
    def ask(headers, query, service):
        params = {"labels": query} if query is not None else {}
        response = reader.get(ROUTES.format(service), params, **environ_of(headers))
        event(f"status {response.status_code}")
        assert response.status_code in (200, 400, 404), (response.status_code, response.content)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
        if query is None and service == "orders" and response.status_code != 404:
            assert (response.status_code == 200) == valid(headers), (headers, response.content)

    ask()


@pytest.mark.django_db
def test_routes__valid_label_headers__the_same_answer_as_the_query(reader, make_node):
    make_node("orders", metadata={"zone": "a"})

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.dictionaries(
            st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,20}\Z"), st.from_regex(r"\A[!-+\--~]{1,20}\Z"), max_size=5
        ).filter(lambda labels: all(value == value.strip() for value in labels.values()))
    )
    def same(labels):
        by_headers = reader.get(ROUTES.format("orders"), **environ_of(labels))
        by_query = reader.get(
            ROUTES.format("orders"), {"labels": ",".join(f"{k}:{v}" for k, v in labels.items())}
        )
        assert by_headers.status_code == by_query.status_code == 200, by_headers.content
        assert timeless(by_headers.json()) == timeless(by_query.json())

    same()
