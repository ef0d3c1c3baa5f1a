"""Databases and tables: the DSN sealed and never shown, names and options checked, a database
that is down answered 503 naming it while the others keep working."""

from __future__ import annotations

import logging

import pytest

from dbproxy_app import catalog
from dbproxy_app.backends.postgresql import _pools
from dbproxy_app.models import Database, Record, Table
from platformsite.sealing import open_text
from tests.dbproxy_app.conftest import external_dsn
from tests.dbproxy_app.test_records_api import create, ids, url
from tests.postgres import end_backend

SECRET_DSN = "postgresql://svc:s3cret-Pa55@127.0.0.1:1/nowhere"


@pytest.fixture(autouse=True)
def _db(transactional_db):
    return None


def test_database__the_dsn_is_sealed_at_rest_and_never_returned_nor_logged(manager, caplog):
    caplog.set_level(logging.DEBUG)
    response = manager.post(
        "/api/v1/db/databases/", {"name": "ext", "backend": "postgresql", "dsn": SECRET_DSN}, format="json"
    )
    assert response.status_code == 201, response.content
    for body in (
        response.content,
        manager.get("/api/v1/db/databases/").content,
        manager.get("/api/v1/db/databases/ext/").content,
        manager.patch("/api/v1/db/databases/ext/", {"publish_changes": False}, format="json").content,
    ):
        assert b"s3cret" not in body and b'dsn"' not in body.replace(b'has_dsn"', b"")
    assert manager.get("/api/v1/db/databases/ext/").json()["has_dsn"] is True
    stored = Database.objects.get(name="ext").dsn_sealed
    assert "s3cret" not in stored and open_text(stored) == SECRET_DSN
    assert "s3cret" not in caplog.text


def test_database__a_bad_dsn_is_refused_without_repeating_it(manager):
    response = manager.post(
        "/api/v1/db/databases/",
        {"name": "ext", "backend": "postgresql", "dsn": "s3cret not= a dsn ="},
        format="json",
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_dsn"
    assert b"s3cret" not in response.content


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "databases"}, 400, "invalid_database"),
        ({"name": "Bad-Name"}, 400, "invalid_database"),
        ({"name": "x", "backend": "mysql"}, 400, "invalid"),
        ({"name": "x", "dsn": "postgresql://a@b/c"}, 400, "invalid_dsn"),
        (
            {"name": "x", "backend": "postgresql"},
            400,
            "invalid_dsn",
        ),  # no default (the original: root, no password)
        ({"name": "x", "backend": "sqlite", "dsn": "../../etc/passwd"}, 400, "invalid_dsn"),
        ({"name": "x", "backend": "sqlite", "dsn": "/tmp/x.sqlite3"}, 400, "invalid_dsn"),
        (
            {"name": "x", "backend": "postgresql", "dsn": SECRET_DSN, "options": {"pool_max": 0}},
            400,
            "invalid_options",
        ),
        (
            {"name": "x", "backend": "postgresql", "dsn": SECRET_DSN, "options": {"schema": "a;b"}},
            400,
            "invalid_schema",
        ),
        ({"name": "x", "options": {"pool_max": 3}}, 400, "invalid_options"),
        # a misspelt field is refused, not dropped for its default (a platform database)
        ({"name": "x", "bakend": "sqlite"}, 400, "invalid"),
    ],
)
def test_database__bad_input_is_400_and_nothing_is_registered(manager, body, status, code):
    response = manager.post("/api/v1/db/databases/", body, format="json")
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not Database.objects.exists()


def test_database__an_unknown_field__is_named(manager, make_database):
    response = manager.post("/api/v1/db/databases/", {"name": "x", "bakend": "sqlite"}, format="json")
    assert response.json()["error"]["details"] == {"bakend": ["Unknown field."]}
    name = make_database()
    changed = manager.patch(f"/api/v1/db/databases/{name}/", {"backend": "sqlite"}, format="json")
    assert changed.status_code == 400 and "backend" in changed.json()["error"]["details"]


def test_row_policy__a_missing_one__is_404_naming_it(manager, make_database):
    name = make_database()
    response = manager.get(f"/api/v1/db/databases/{name}/policies/999/")
    error = response.json()["error"]
    assert response.status_code == 404 and error["message"] == f"No row policy 999 on database {name!r}."
    assert error["details"] == {"database": name, "pk": 999}


def test_database__a_dsn_holding_a_lone_surrogate_is_400(manager):
    body = '{"name": "x", "backend": "postgresql", "dsn": "host=a\\ud800"}'
    response = manager.post("/api/v1/db/databases/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] in ("invalid", "invalid_dsn")
    assert not Database.objects.exists()
    from dbproxy_app.services.databases import check_dsn
    from platformsite.api.errors import Invalid

    with pytest.raises(Invalid):
        check_dsn("postgresql", "host=a\ud800")


def test_database__a_second_with_the_same_name_is_409(manager, make_database):
    name = make_database("platform")
    response = manager.post("/api/v1/db/databases/", {"name": name}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "database_exists"


def test_database__removing_a_platform_database_removes_its_records(manager, writer, make_database):
    name = make_database("platform")
    create(writer, name, {"id": "a"})
    assert manager.delete(f"/api/v1/db/databases/{name}/").status_code == 204
    assert not Record.objects.exists() and not Table.objects.exists()
    assert writer.get(url(name)).status_code == 404


def test_tables__created_explicitly_listed_and_dropped_with_their_records(
    backend, manager, writer, make_database
):
    name = make_database(backend)
    first = manager.post(f"/api/v1/db/databases/{name}/tables/", {"name": "items"}, format="json")
    assert first.status_code == 201 and first.json() == {
        "name": "items",
        "database": name,
        "created": first.json()["created"],
    }
    assert (
        manager.post(f"/api/v1/db/databases/{name}/tables/", {"name": "items"}, format="json").status_code
        == 200
    )
    assert ids(writer.get(url(name, "items"))) == []
    create(writer, name, {"id": "a"}, table="items")
    assert manager.delete(f"/api/v1/db/databases/{name}/tables/items/").status_code == 204
    assert writer.get(url(name, "items")).status_code == 404
    create(writer, name, {"id": "b"}, table="items")  # a new table: the old records are gone
    assert ids(writer.get(url(name, "items"))) == ["b"]


def test_table__dropped_between_the_catalog_and_the_row__404_table_not_found(
    manager, make_database, monkeypatch
):
    # two drops at once: the second read the catalog before the first's drop, then found no row,
    # and answered 404 not_found with other details than every other missing table
    from dbproxy_app.catalog import Entry

    name = make_database("platform")
    monkeypatch.setattr(Entry, "table", lambda entry, table: None)  # the catalog still lists it
    response = manager.delete(f"/api/v1/db/databases/{name}/tables/gone/")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "table_not_found" and error["details"] == {"database": name, "table": "gone"}


def test_a_database_that_is_down__is_503_naming_it_while_others_keep_working(
    manager, writer, make_database, settings
):
    settings.DB_POOL_TIMEOUT_SECONDS = 0.3
    settings.DB_CONNECT_TIMEOUT_SECONDS = 1
    up = make_database("platform")
    create(writer, up, {"id": "a"})
    response = manager.post(
        "/api/v1/db/databases/", {"name": "down", "backend": "postgresql", "dsn": SECRET_DSN}, format="json"
    )
    assert response.status_code == 201
    for response in (
        manager.post("/api/v1/db/databases/down/tables/", {"name": "t"}, format="json"),
        writer.post(url("down", "t"), {"id": "a"}, format="json"),
    ):
        assert response.status_code == 503, response.content
        error = response.json()["error"]
        assert error["code"] == "database_unavailable" and error["details"] == {"database": "down"}
        assert b"s3cret" not in response.content
    assert not Table.objects.filter(database__name="down").exists()
    assert ids(writer.get(url(up))) == ["a"]


def test_a_database_found_down__is_answered_at_once_with_retry_after_until_it_is_tried_again(
    manager, writer, make_database, settings, monkeypatch
):
    from psycopg_pool import ConnectionPool

    settings.DB_POOL_TIMEOUT_SECONDS = 0.3
    settings.DB_CONNECT_TIMEOUT_SECONDS = 1
    settings.DB_DOWN_SECONDS = 60
    manager.post(
        "/api/v1/db/databases/", {"name": "down", "backend": "postgresql", "dsn": SECRET_DSN}, format="json"
    )

    def add_table():
        return manager.post("/api/v1/db/databases/down/tables/", {"name": "t"}, format="json")

    waits = []
    getconn = ConnectionPool.getconn
    monkeypatch.setattr(
        ConnectionPool, "getconn", lambda pool, *a, **k: waits.append(1) or getconn(pool, *a, **k)
    )

    # The first request waits for a connection, then the database is found unreachable
    first = add_table()
    assert first.status_code == 503 and len(waits) == 1
    # The next ones are answered at once, with when to come back, without waiting on the pool
    for _ in range(3):
        answer = add_table()
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "database_unavailable"
        assert answer.json()["error"]["details"] == {"database": "down"}
        assert 55 <= int(answer["Retry-After"]) <= 60
    assert len(waits) == 1
    # Once DB_DOWN_SECONDS have passed, a request waits for it again
    settings.DB_DOWN_SECONDS = 0
    for pool in _pools.values():
        pool.breaker.down_until = 0.0
    assert add_table().status_code == 503 and len(waits) == 2


@pytest.mark.postgres
def test_a_database_whose_connections_are_all_in_use__is_not_taken_for_down(make_database, writer, settings):
    settings.DB_POOL_TIMEOUT_SECONDS = 0.3
    name = make_database("postgresql", options={"pool_max": 1})
    create(writer, name, {"id": "a"})
    with catalog.entry(name).backend.session():  # holds the pool's only connection
        busy = writer.get(url(name, record="a"))
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "database_unavailable"
    assert writer.get(url(name, record="a")).status_code == 200  # not answered 503 for DB_DOWN_SECONDS


@pytest.mark.postgres
def test_statement_timeout__a_slow_statement_is_503_database_timeout(manager, make_database):
    name = make_database("postgresql", options={"statement_timeout_ms": 50})
    entry = catalog.entry(name)
    from dbproxy_app.backends import Unavailable

    with pytest.raises(Unavailable) as raised, entry.backend.session() as session:
        session.execute("SELECT pg_sleep(1)")
    assert raised.value.code == "database_timeout" and raised.value.status == 503


@pytest.mark.postgres
def test_a_database_that_stops_answering_mid_statement__is_503_before_its_statement_timeout(
    make_database, writer, monkeypatch
):
    from dbproxy_app.backends import Unavailable, postgresql
    from platformsite.db import Stalls

    monkeypatch.setattr(postgresql, "stalls", Stalls(stall_seconds=0.3, tick=0.1))
    monkeypatch.setattr(postgresql, "silent", lambda *args, **kwargs: True)  # a new connection unanswered
    name = make_database("postgresql", options={"statement_timeout_ms": 60_000})
    create(writer, name, {"id": "a"})

    with pytest.raises(Unavailable) as raised, catalog.entry(name).backend.session() as session:
        backend = session.execute("SELECT pg_backend_pid()")[0][0][0]
        session.execute("SELECT pg_sleep(20)")
    end_backend(backend, external_dsn())
    assert raised.value.status == 503 and raised.value.code == "database_unavailable"

    # Then the database is refused at once for DB_DOWN_SECONDS, naming it
    refused = writer.get(url(name, record="a"))
    assert refused.status_code == 503 and int(refused["Retry-After"]) >= 1
    assert refused.json()["error"]["details"]["database"] == name


@pytest.mark.postgres
def test_pool__is_one_per_database_with_its_limit(make_database, writer):
    name = make_database("postgresql", options={"pool_max": 2})
    create(writer, name, {"id": "a"})
    assert writer.get(url(name, record="a")).status_code == 200
    pools = [pool for pool in _pools.values() if pool.name == name]
    assert len(pools) == 1 and pools[0].max_size == 2


def test_sqlite_database__a_file_another_database_keeps__is_409_and_nothing_is_registered(manager):
    """A second name on one file would read, write and drop what the first confines."""
    databases = "/api/v1/db/databases/"
    assert manager.post(databases, {"name": "vault", "backend": "sqlite"}, format="json").status_code == 201
    named = {"name": "other", "backend": "sqlite", "dsn": "other.sqlite3"}
    assert manager.post(databases, named, format="json").status_code == 201
    for body in (
        {"name": "spy", "backend": "sqlite", "dsn": "vault.sqlite3"},  # vault's file by its name
        {"name": "spy", "backend": "sqlite", "dsn": "other.sqlite3"},  # other's by its DSN
        {"name": "other", "backend": "sqlite"},  # exists: its name is answered first
    ):
        response = manager.post(databases, body, format="json")
        assert response.status_code == 409, (body, response.content)
        assert response.json()["error"]["code"] in ("dsn_in_use", "database_exists")
    assert sorted(Database.objects.values_list("name", flat=True)) == ["other", "vault"]
    # a database whose name is another's DSN would take that file by its default name
    manager.post(databases, {"name": "mine", "backend": "sqlite", "dsn": "theirs.sqlite3"}, format="json")
    response = manager.post(databases, {"name": "theirs", "backend": "sqlite"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "dsn_in_use"
    # moving to a file in use is refused too, and the DSN stays as it was
    moved = manager.patch(f"{databases}other/", {"dsn": "vault.sqlite3"}, format="json")
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "dsn_in_use"
    assert catalog.dsn_of(Database.objects.get(name="other")) == "other.sqlite3"
    kept = manager.patch(f"{databases}other/", {"dsn": "other.sqlite3"}, format="json")
    assert kept.status_code == 200  # its own file
