"""Every write route without path parameters, on any JSON body: an answer or a 4xx in the error
shape, never a 5xx.

The bodies are objects with the route's documented fields (from the OpenAPI schema) holding any
JSON (wrong types, nesting, huge numbers, NUL characters), or any JSON at all.  The caller holds
``admin``, so every refusal is the body's.
"""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "\x00", "a" * 300, "order.*", "http://127.0.0.1:9/h", "1970-01-01T00:00:00Z"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _fields(schema: dict, body: dict) -> list[str]:
    content = body.get("content", {})
    for media in ("application/json", *content):
        found = content.get(media, {}).get("schema", {})
        if "$ref" in found:
            found = schema["components"]["schemas"][found["$ref"].rsplit("/", 1)[1]]
        if found.get("properties"):
            return sorted(found["properties"])
    return []


def routes() -> list[tuple[str, str, list[str]]]:
    """(path, method, documented body fields) of the write routes without path parameters."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        if "{" in path:
            continue
        for method in ("post", "put", "patch"):
            if method in operations:
                body = operations[method].get("requestBody", {})
                found.append((path, method, _fields(schema, body)))
    return sorted(found)


ROUTES = routes()


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "fields"), ROUTES, ids=[f"{m} {p}" for p, m, _f in ROUTES])
def test_any_body__answers_or_4xx(path, method, fields, api_client, settings):
    settings.EVENTS_WEBHOOK_TIMEOUT = 0.2
    caller = api_client("admin")
    documented = st.dictionaries(st.sampled_from(fields or ["x"]), JSON, max_size=len(fields) + 1)

    @settings_(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(documented, documented, JSON))
    def send(body):
        response = getattr(caller, method)(path, json.dumps(body), content_type="application/json")
        event(f"status {response.status_code}")
        assert response.status_code < 500, (path, body, response.status_code, response.content[:300])
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
            assert set(response.json()["error"]) == {"code", "message", "details"}, response.content[:300]

    send()


settings_ = settings
