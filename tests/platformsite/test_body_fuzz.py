"""Every write route, on any JSON body: an answer or a 4xx in the error shape, never a 5xx.  Routes
with path parameters are sent to resources stored first (or to unknown ones: 404s).

The bodies are objects with the route's documented fields (from the OpenAPI schema) holding any
JSON (wrong types, nesting, huge numbers, NUL characters), or any JSON at all.  The caller holds
``admin``, so every refusal is the body's.
"""

from __future__ import annotations

import json
import re

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


# --- Write routes on stored resources ------------------------------------------------------------

#: Path parameters -> the stored resource's name (``seed``); the rest stay unknown (404s).
STORED = {
    "ns": "app",
    "env": "prod",
    "path": "db/host",
    "database": "web",
    "table": "web",
    "record_id": "ops",
    "node_id": "node-1",
    "id": "1",
    "service": "web",
    "check_id": "00000000-0000-0000-0000-000000000001",
}
NAMES = {"/api/v1/events/subscriptions/": "hooks"}
NODE = {"id": "node-1", "service": "web", "address": "10.0.0.1", "port": 8080}


def seed(api) -> None:
    writes = [
        ("post", "/api/v1/auth/roles/", {"name": "ops"}),
        ("post", "/api/v1/auth/rules/", {"role": "ops", "resource": "config:app/*", "action": "read"}),
        ("post", "/api/v1/config/namespaces/", {"name": "app"}),
        ("put", "/api/v1/config/namespaces/app/layers/prod/", {"data": {"db": {"host": "db"}}}),
        ("post", "/api/v1/discovery/nodes/", NODE),
        ("post", "/api/v1/events/subscriptions/", {"name": "hooks", "url": "http://127.0.0.1:9/hook"}),
        ("post", "/api/v1/db/databases/", {"name": "web"}),
        ("post", "/api/v1/db/web/web/records/", {"id": "ops", "data": {"n": 1}}),
    ]
    for method, url, body in writes:
        assert getattr(api, method)(url, body, format="json").status_code in (200, 201), url


def stored_routes() -> list[tuple[str, str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        if "{" not in path or not path.startswith("/api/"):
            continue
        named = NAMES.get(path.split("{", 1)[0])
        concrete = re.sub(r"\{(\w+)\}", lambda m, named=named: named or STORED.get(m.group(1), "web"), path)
        for method in ("post", "put", "patch"):
            if method in operations:
                found.append((concrete, method, _fields(schema, operations[method].get("requestBody", {}))))
    return sorted(found)


STORED_ROUTES = stored_routes()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "method", "fields"), STORED_ROUTES, ids=[f"{m} {p}" for p, m, _f in STORED_ROUTES]
)
def test_any_body_on_a_stored_resource__answers_or_4xx(path, method, fields, api_client, settings):
    settings.EVENTS_WEBHOOK_TIMEOUT = 0.2
    caller = api_client("admin")
    seed(caller)
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
