"""Errors of the database behind a name (a role without a privilege, a constraint or trigger an
operator added): answered in the error shape naming the database, never a 500, and nothing that
was stored is lost."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from dbproxy_app.backends.sqlite import directory
from tests.dbproxy_app.conftest import external_dsn
from tests.postgres import end_other_connections

pytestmark = pytest.mark.django_db(transaction=True)


def records(database: str) -> str:
    return f"/api/v1/db/{database}/orders/records/"


def on_external(statement: str) -> None:
    with psycopg.connect(external_dsn(), autocommit=True) as conn:
        conn.execute(statement)


def stored_ids(reader, database: str) -> list[str]:
    return sorted(record["id"] for record in reader.get(records(database)).json()["results"])


@pytest.mark.postgres
def test_postgresql__a_privilege_the_role_lacks_is_a_502_naming_the_database(make_database, writer, reader):
    name = make_database("postgresql")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    on_external(f'REVOKE INSERT ON "{name}"."orders" FROM CURRENT_USER')

    response = writer.post(records(name), {"id": "b", "data": {"x": 2}}, format="json")

    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("database_error", {"database": name, "sqlstate": "42501"})
    assert "privilege" in error["message"] and "dbproxy_external" not in error["message"]
    assert stored_ids(reader, name) == ["a"]


@pytest.mark.postgres
def test_postgresql__a_constraint_an_operator_added_is_a_409_naming_it(make_database, writer, reader):
    name = make_database("postgresql")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    on_external(f"""ALTER TABLE "{name}"."orders" ADD CONSTRAINT small CHECK ((data->>'x')::int < 10)""")

    single = writer.post(records(name), {"id": "b", "data": {"x": 50}}, format="json")
    bulk = writer.post(  # 60 records: written with COPY
        f"/api/v1/db/{name}/orders/bulk/",
        {"create": [{"id": f"c{i}", "data": {"x": 50 if i == 59 else 1}} for i in range(60)]},
        format="json",
    )

    for response in (single, bulk):
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["code"] == "constraint_violation"
        assert {k: error["details"][k] for k in ("database", "constraint")} == {
            "database": name,
            "constraint": "small",
        }
    assert stored_ids(reader, name) == ["a"]


def test_sqlite__a_trigger_refusing_a_write_is_a_409_not_an_id_taken(make_database, writer, reader):
    name = make_database("sqlite")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    with sqlite3.connect(directory() / f"{name}.sqlite3") as db:
        db.execute("CREATE TRIGGER no_b BEFORE INSERT ON \"orders\" BEGIN SELECT RAISE(ABORT, 'no'); END")

    response = writer.post(records(name), {"id": "b", "data": {"x": 2}}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "constraint_violation"
    assert (
        writer.post(records(name), {"id": "a"}, format="json").json()["error"]["code"]
        == "constraint_violation"
    )
    assert stored_ids(reader, name) == ["a"]


@pytest.mark.postgres
def test_postgresql__a_table_altered_behind_the_proxy_is_a_502_with_the_sqlstate(
    make_database, writer, reader
):
    name = make_database("postgresql")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    on_external(f'ALTER TABLE "{name}"."orders" DROP COLUMN data')

    response = reader.get(records(name))

    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("database_error", {"database": name, "sqlstate": "42703"})


def test_sqlite__a_table_dropped_behind_the_proxy_is_a_502_without_sqlites_message(
    make_database, writer, reader, caplog
):
    name = make_database("sqlite")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    with sqlite3.connect(directory() / f"{name}.sqlite3") as db:
        db.execute('DROP TABLE "orders"')

    answers = [reader.get(records(name)), writer.post(records(name), {"id": "b"}, format="json")]

    for response in answers:  # was 503 database_unavailable, "no such table: orders", retried for ever
        assert response.status_code == 502 and "Retry-After" not in response
        error = response.json()["error"]
        assert (error["code"], error["details"]) == (
            "database_error",
            {"database": name, "error": "SQLITE_ERROR"},
        )
        assert "no such table" not in response.content.decode()
    assert "no such table: orders" in caplog.text  # the operator's log has it


def test_sqlite__a_busy_file_is_still_503():
    from dbproxy_app.backends.base import Unavailable
    from dbproxy_app.backends.sqlite import SqliteSession

    class Locked:  # another writer holds the file past the busy timeout
        def execute(self, *args):
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorname = "SQLITE_BUSY"
            raise error

    with pytest.raises(Unavailable) as raised:
        SqliteSession("lite", Locked()).execute("SELECT 1")
    assert (raised.value.status, raised.value.code, str(raised.value)) == (
        503,
        "database_unavailable",
        "Database 'lite' is unavailable.",
    )


def test_sqlite__any_other_database_error_is_a_502_naming_it():
    from dbproxy_app.backends.base import DatabaseRefused
    from dbproxy_app.backends.sqlite import SqliteSession

    class Damaged:  # a file whose pages cannot be read
        def execute(self, *args):
            raise sqlite3.DatabaseError("database disk image is malformed")

    with pytest.raises(DatabaseRefused) as refused:
        SqliteSession("lite", Damaged()).execute("SELECT 1")
    assert (refused.value.status, refused.value.code) == (502, "database_error")
    assert refused.value.details == {"database": "lite", "error": "DatabaseError"}


@pytest.mark.postgres
def test_postgresql__connections_the_server_ended_are_replaced_not_a_503(make_database, writer, reader):
    # Given a database whose pool holds idle connections
    name = make_database("postgresql")
    assert writer.post(records(name), {"id": "a", "data": {"x": 1}}, format="json").status_code == 201
    assert reader.get(records(name)).status_code == 200

    # When the server ends them (a restart, a failover, an operator's pg_terminate_backend)
    with psycopg.connect(external_dsn(), autocommit=True) as conn:
        assert end_other_connections(conn) >= 1

    # Then the next requests are answered on new connections
    assert [reader.get(records(name)).status_code for _ in range(3)] == [200, 200, 200]
    assert writer.post(records(name), {"id": "b", "data": {"x": 2}}, format="json").status_code == 201
    assert stored_ids(reader, name) == ["a", "b"]
