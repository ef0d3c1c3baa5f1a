"""Every operation of /api/schema/, fuzzed against the live app: what it answers is what it documents.

Schemathesis loads the schema from the WSGI application (the hot path in front of Django, as
served) and sends each operation valid and invalid inputs (its examples, coverage and fuzzing
phases) with a bearer token holding ``admin``.  No answer may be a 5xx, and each one's status,
content type and body must be documented.  Each operation runs on a fresh database holding a
few resources, whose names the path and body parameters take half of the time, so that reads
and writes of things that exist are fuzzed as well as of things that do not.  The budget is small
and the run derandomized: the same cases every time, about a minute in all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from platformsite.hotpath import with_hot_path

#: Cases per operation in the fuzzing phase (the coverage phase adds its boundary cases).
MAX_EXAMPLES = 25

#: What the seeded database holds, by the parameter names of the paths and bodies that point at it.
SEEDED = {
    "names": ["ops", "ops-bot", "web", "hooks"],
    "namespaces": ["app"],
    "envs": ["prod"],
    "paths": ["db/host", "db", "replicas"],
    "nodes": ["node-1"],
    "revisions": [1],
}
BINDINGS = {
    "path.name": "names",
    "path.ns": "namespaces",
    "path.env": "envs",
    "path.path": "paths",
    "path.node_id": "nodes",
    "path.number": "revisions",
    "path.database": "names",
    "path.table": "names",
    "path.record_id": "names",
    "query.namespace": "namespaces",
    "query.env": "envs",
    "query.service": "names",
    "body.role": "names",
    "body.account": "names",
    "body.revision": "revisions",
    "body.expected_revision": "revisions",
}

#: The app as served: the hot path in front of Django.
APP = with_hot_path(get_wsgi_application())

schema = schemathesis.openapi.from_wsgi(
    "/api/schema/",
    APP,
    config=schemathesis.Config.from_dict(
        {
            "seed": 20_250_101,
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
            "dictionaries": {name: {"values": values} for name, values in SEEDED.items()},
            "parameters": {
                key: {"dictionary": dictionary, "probability": 0.5} for key, dictionary in BINDINGS.items()
            },
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
        }
    ),
)


def seed(api: APIClient) -> None:
    """One of each resource, named as in SEEDED (through the API, as a client would create them)."""
    writes = [
        ("post", "/api/v1/auth/roles/", {"name": "ops"}),
        ("post", "/api/v1/auth/accounts/", {"name": "ops-bot", "scopes": ["config:read"]}),
        ("post", "/api/v1/auth/rules/", {"role": "ops", "resource": "config:app/*", "action": "read"}),
        ("post", "/api/v1/auth/bindings/", {"role": "ops", "account": "ops-bot"}),
        ("post", "/api/v1/config/namespaces/", {"name": "app"}),
        (
            "put",
            "/api/v1/config/namespaces/app/layers/prod/",
            {"data": {"db": {"host": "db"}, "replicas": 2}},
        ),
        (
            "post",
            "/api/v1/discovery/nodes/",
            {"id": "node-1", "service": "web", "address": "10.0.0.1", "port": 8080},
        ),
        ("post", "/api/v1/events/subscriptions/", {"name": "hooks", "url": "http://127.0.0.1:9/hook"}),
        ("post", "/api/v1/events/", {"type": "order.created", "source": "/shop", "data": {"id": 1}}),
        ("post", "/api/v1/db/databases/", {"name": "web"}),
        ("post", "/api/v1/db/web/web/records/", {"id": "ops", "metadata": {"k": "v"}, "data": {"n": 1}}),
    ]
    for method, url, body in writes:
        response = getattr(api, method)(url, body, format="json")
        assert response.status_code in (200, 201), (url, response.content)


@pytest.fixture
def admin_headers(transactional_db, settings, issue_token) -> Iterator[dict[str, str]]:
    # Blocking reads (config's and discovery's ``wait``) answer at once instead of holding the run.
    settings.CONFIG_MAX_WAIT_SECONDS = 0.01
    settings.DISCOVERY_MAX_WAIT_SECONDS = 0.01
    settings.EVENTS_WEBHOOK_TIMEOUT = 0.2
    headers = {"Authorization": f"Bearer {issue_token('admin')}"}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=headers["Authorization"])
    seed(api)
    return headers


@schema.parametrize()
@hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # one database each
def test_every_operation_answers_only_what_the_schema_documents(case, admin_headers):
    case.call_and_validate(headers=admin_headers)


# --- What the fuzzing found (PostgreSQL refuses UTC offsets beyond 15:59; Python parses up to 23:59)


def test_an_audit_date_filter_with_an_offset_postgresql_refuses_is_compared_in_utc(api_client):
    writer = api_client("config:read", "config:write")
    writer.post("/api/v1/config/namespaces/", {"name": "app"}, format="json")
    writer.put("/api/v1/config/namespaces/app/layers/prod/", {"data": {"a": 1}}, format="json")

    since = writer.get("/api/v1/config/namespaces/app/audit/", {"from": "0508-07-01T09:12:12+16:58"})
    until = writer.get("/api/v1/config/audit/", {"to": "2000-01-01T00:00:00-23:59"})

    assert since.status_code == 200
    assert [r["revision"] for r in since.json()["results"]] == [1]
    assert until.status_code == 200
    assert until.json()["results"] == []


@pytest.mark.parametrize(
    ("name", "value"), [("from", "0001-01-01T00:00:00+01:00"), ("to", "9999-12-31T23:00:00-16:00")]
)
def test_an_audit_date_filter_outside_years_1_to_9999_in_utc_is_refused(api_client, name, value):
    answer = api_client("config:read").get("/api/v1/config/audit/", {name: value})

    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {name: ["Out of range: years 1 to 9999 in UTC."]}


def test_an_event_time_with_an_offset_postgresql_refuses_is_stored_and_searched_in_utc(api_client):
    api = api_client("events:read", "events:write")
    event = {"type": "order.created", "source": "/shop", "time": "2026-01-01T00:00:00+16:58"}

    published = api.post("/api/v1/events/", event, format="json")
    found = api.get("/api/v1/events/", {"from": "2025-12-30T07:03:00-23:59"})

    assert published.status_code == 201
    assert found.status_code == 200
    assert [e["time"] for e in found.json()["results"]] == ["2025-12-31T07:02:00Z"]
