"""The change feed (events committed with the records, never without), and query counts pinned."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from event_app.models import Event
from tests.dbproxy_app.test_records_api import create, url


def feed(database: str) -> list[tuple[str, str, int | None]]:
    rows = Event.objects.filter(source="/platform/db", subject__startswith=f"{database}/").order_by("id")
    return [(e.type, e.subject, e.data.get("version")) for e in rows]


def test_each_committed_change__publishes_its_event_on_every_backend(database, writer):
    create(writer, database, {"id": "a", "metadata": {"env": "prod"}})
    writer.patch(url(database, record="a"), {"data": 1}, format="json")
    writer.delete(url(database, record="a"))
    assert feed(database) == [
        ("db.record.created", f"{database}/orders/a", 1),
        ("db.record.updated", f"{database}/orders/a", 2),
        ("db.record.deleted", f"{database}/orders/a", 2),
    ]
    event = Event.objects.filter(type="db.record.created", subject=f"{database}/orders/a").get()
    assert event.data == {
        "database": database,
        "table": "orders",
        "id": "a",
        "version": 1,
        "metadata": {"env": "prod"},
    }


def batches(database: str) -> list[dict]:
    rows = Event.objects.filter(type="db.record.batch", subject=f"{database}/orders/").order_by("id")
    return [e.data for e in rows]


def test_a_bulk_call__publishes_batch_events_listing_every_record_it_changed(database, writer):
    create(writer, database, {"id": "u", "metadata": {"k": "1"}})
    create(writer, database, {"id": "d"})
    body = {
        "create": [{"id": "b", "metadata": {"env": "prod"}}, {"id": "c"}],
        "patch": [{"id": "u", "data": 2}],
    }
    body["delete"] = ["d"]
    assert writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json").status_code == 200
    assert batches(database) == [
        {
            "database": database,
            "table": "orders",
            "part": 1,
            "parts": 1,
            "created": [
                {"id": "b", "version": 1, "metadata": {"env": "prod"}},
                {"id": "c", "version": 1, "metadata": {}},
            ],
            "updated": [{"id": "u", "version": 2, "metadata": {"k": "1"}}],
            "deleted": [{"id": "d", "version": 1, "metadata": {}}],
        }
    ]
    # one event a record stays the single-record calls' feed
    assert [t for t, _, _ in feed(database)] == ["db.record.created", "db.record.created", "db.record.batch"]


def test_a_large_bulk_call__splits_its_batch_into_parts_in_order(database, writer, monkeypatch):
    from dbproxy_app.services import records

    monkeypatch.setattr(records, "BATCH_RECORDS", 3)
    body = {"create": [{"id": f"r{i}"} for i in range(7)]}
    assert writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json").status_code == 200
    parts = batches(database)
    assert [(p["part"], p["parts"], len(p["created"])) for p in parts] == [(1, 3, 3), (2, 3, 3), (3, 3, 1)]
    assert [r["id"] for p in parts for r in p["created"]] == [f"r{i}" for i in range(7)]


def test_a_batch_part__stays_about_its_byte_bound(database, writer, monkeypatch):
    from dbproxy_app.services import records

    monkeypatch.setattr(records, "BATCH_BYTES", 2000)
    body = {"create": [{"id": f"r{i}", "metadata": {"pad": "x" * 500}} for i in range(10)]}
    assert writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json").status_code == 200
    parts = batches(database)
    assert [len(p["created"]) for p in parts] == [3, 3, 3, 1]
    assert sum(len(p["created"]) for p in parts) == 10


def test_a_bulk_call_that_fails__announces_nothing(database, writer):
    create(writer, database, {"id": "taken"})
    before = feed(database)
    body = {"create": [{"id": "new"}, {"id": "taken"}]}
    assert writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json").status_code == 409
    body = {"create": [{"id": "new2"}], "delete": ["missing"]}
    assert writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json").status_code == 404
    assert feed(database) == before


def test_a_change_that_does_not_commit__announces_nothing(database, writer):
    create(writer, database, {"id": "a"})
    before = feed(database)
    assert writer.post(url(database), {"id": "a"}, format="json").status_code == 409
    assert (
        writer.put(url(database, record="a"), {"data": 1}, format="json", HTTP_IF_MATCH='"9"').status_code
        == 409
    )
    assert feed(database) == before


def test_a_database_without_its_change_feed__publishes_nothing(make_database, writer, transactional_db):
    name = make_database("platform", publish_changes=False)
    create(writer, name, {"id": "a"})
    assert feed(name) == []


@pytest.fixture
def warm(make_database, writer, transactional_db):
    name = make_database("platform")
    writer.post(
        f"/api/v1/db/{name}/orders/bulk/", {"create": [{"id": f"r{i}"} for i in range(30)]}, format="json"
    )
    writer.get(url(name, record="r1"))  # the catalog and token are warm
    return name


def count(call) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
    assert response.status_code < 300, response.content
    return len(queries)


def test_query_counts__a_read_by_id_and_a_page_are_one_query(warm, writer):
    assert count(lambda: writer.get(url(warm, record="r1"))) == 1
    assert count(lambda: writer.get(url(warm) + "?limit=10")) == 1
    assert count(lambda: writer.get(url(warm) + "?limit=100&meta.x=is.null")) == 1
    assert count(lambda: writer.get(url(warm) + "?limit=10", HTTP_PREFER="count=exact")) == 2


def test_query_counts__a_bulk_write_grows_only_by_batches(warm, writer):
    from math import ceil

    from dbproxy_app.models import Record

    bulk = f"/api/v1/db/{warm}/orders/bulk/"
    writer.post(bulk, {"create": [{"id": f"w{i}"} for i in range(60)]}, format="json")  # COPY path warm
    small = count(lambda: writer.post(bulk, {"create": [{"id": f"s{i}"} for i in range(60)]}, format="json"))
    large = count(lambda: writer.post(bulk, {"create": [{"id": f"l{i}"} for i in range(400)]}, format="json"))
    # one COPY on PostgreSQL; on SQLite one INSERT per batch of as many rows as its parameters allow
    fields = [f for f in Record._meta.concrete_fields if not f.primary_key]
    batch = (
        10**9 if connection.vendor == "postgresql" else connection.ops.bulk_batch_size(fields, [None] * 400)
    )
    assert large - small == ceil(400 / min(batch, 500)) - ceil(60 / min(batch, 500))
