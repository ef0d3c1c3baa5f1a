"""Records through the API with generated input: any query string is answered 200 or 400, and any
record body is stored or refused with a 4xx, never a 500."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dbproxy_app.test_records_api import create, url

FIELDS = [
    "meta.env",
    "meta.x",
    "data->a",
    "data->>a",
    "data->a->b",
    "id",
    "created",
    "version",
    "or",
    "order",
    "select",
]
OPS = ["eq.", "neq.", "gt.", "like.", "ilike.", "in.(", "is.", "not.eq.", ""]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.sampled_from(OPS), st.text(max_size=12)), min_size=1, max_size=3
    )
)
def test_any_query_string__is_answered_200_or_400_never_500(stored_platform, writer, pairs):
    query = urlencode([(name, op + value) for name, op, value in pairs])
    response = writer.get(url(stored_platform) + "?" + query)
    assert response.status_code in (200, 400), (query, response.content)
    if response.status_code == 400:
        assert response.json()["error"]["code"] in ("invalid_query", "invalid")


@pytest.fixture
def stored_platform(make_database, writer, transactional_db):
    name = make_database("platform")
    create(writer, name, {"id": "keep", "metadata": {"env": "prod"}, "data": {"a": {"b": 1}}})
    return name


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=JSON
    | st.dictionaries(st.sampled_from(["id", "metadata", "data", "bytes", "expected_version"]), JSON)
)
def test_any_record_body__is_stored_or_refused_with_a_4xx(stored_platform, writer, body):
    response = writer.post(url(stored_platform), body, format="json")
    assert response.status_code in (201, 400, 409, 413), (body, response.content)
    bulk = writer.post(f"/api/v1/db/{stored_platform}/orders/bulk/", {"create": [body]}, format="json")
    assert bulk.status_code in (200, 400, 409, 413), (body, bulk.content)
