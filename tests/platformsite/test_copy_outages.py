"""A COPY runs on psycopg's own cursor, outside Django's error wrapping: a connection lost during
one (the database restarting) is still a 503 with Retry-After, never a 500, on every service that
COPYs (trace ingest, event batches, db bulk inserts)."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def copy_fails(monkeypatch):
    """Every COPY fails as it does when the server goes away mid-request."""

    def lost(self, statement, *args, **kwargs):
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

    monkeypatch.setattr(psycopg.Cursor, "copy", lost)


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.content
    assert int(answer["Retry-After"]) > 0


def test_trace_ingest(api_client, copy_fails):
    from trace_app.models import Span

    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "GET /",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000001000000",
    }
    service = {"key": "service.name", "value": {"stringValue": "shop"}}
    body = {"resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": [span]}]}]}
    answer = api_client("trace:write").post("/v1/traces", json.dumps(body), content_type="application/json")
    assert_unavailable(answer)
    assert answer.json()["error"]["code"] == "unavailable"
    assert not Span.objects.exists()


def test_event_batch(api_client, copy_fails):
    from event_app.models import Event

    batch = [
        {"specversion": "1.0", "type": "order.created", "source": "/shop", "id": f"e{n}"} for n in range(60)
    ]
    answer = api_client("events:write").post(
        "/api/v1/events/", json.dumps(batch), content_type="application/cloudevents-batch+json"
    )
    assert_unavailable(answer)
    assert not Event.objects.filter(source="/shop").exists()
