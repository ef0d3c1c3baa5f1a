"""The change feed (events committed with the records, never without), and query counts pinned."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from event_app.models import Event
from tests.dbproxy_app.test_records_api import create, url


def feed(database: str) -> list[tuple[str, str, int]]:
    rows = Event.objects.filter(source="/platform/db", subject__startswith=f"{database}/").order_by("id")
    return [(e.type, e.subject, e.data["version"]) for e in rows]


def test_each_committed_change__publishes_its_event_on_every_backend(database, writer):
    create(writer, database, {"id": "a", "metadata": {"env": "prod"}})
    writer.patch(url(database, record="a"), {"data": 1}, format="json")
    writer.delete(url(database, record="a"))
    writer.post(f"/api/v1/db/{database}/orders/bulk/", {"create": [{"id": "b"}, {"id": "c"}]}, format="json")
    assert feed(database) == [
        ("db.record.created", f"{database}/orders/a", 1),
        ("db.record.updated", f"{database}/orders/a", 2),
        ("db.record.deleted", f"{database}/orders/a", 2),
        ("db.record.created", f"{database}/orders/b", 1),
        ("db.record.created", f"{database}/orders/c", 1),
    ]
    event = Event.objects.filter(type="db.record.created", subject=f"{database}/orders/a").get()
    assert event.data == {
        "database": database,
        "table": "orders",
        "id": "a",
        "version": 1,
        "metadata": {"env": "prod"},
    }


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
