"""Records through the API on every backend: CRUD, versions, bulk, bad input, injection."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from event_app.models import Event


def url(database: str, table: str = "orders", record: str | None = None) -> str:
    base = f"/api/v1/db/{database}/{table}/records/"
    return base + f"{record}/" if record else base


def create(api, database, body, table="orders"):
    response = api.post(url(database, table), body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_create__with_a_client_id_or_a_server_uuid(database, writer):
    mine = create(writer, database, {"id": "order-1", "metadata": {"env": "prod"}, "data": {"total": 5}})
    assert mine["id"] == "order-1" and mine["version"] == 1 and mine["metadata"] == {"env": "prod"}
    assert mine["data"] == {"total": 5} and mine["bytes"] is None
    theirs = create(writer, database, {"data": [1, 2]})
    assert len(theirs["id"]) == 32 and theirs["data"] == [1, 2]
    response = writer.get(url(database, record="order-1"))
    assert response.status_code == 200 and response.json() == mine
    assert response["ETag"] == '"1"'


def test_create__bytes_round_trip_as_base64(database, writer):
    blob = bytes(range(256))
    made = create(writer, database, {"id": "b", "bytes": base64.b64encode(blob).decode()})
    assert base64.b64decode(made["bytes"]) == blob and made["data"] is None
    got = writer.get(url(database, record="b")).json()
    assert base64.b64decode(got["bytes"]) == blob


def test_create__an_existing_id_is_409_and_keeps_the_stored_record(database, writer):
    create(writer, database, {"id": "x", "data": 1})
    response = writer.post(url(database), {"id": "x", "data": 2}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "record_exists"
    assert writer.get(url(database, record="x")).json()["data"] == 1


@pytest.mark.parametrize("count", [3, 70])  # a few rows, and the COPY path
def test_bulk_create__an_existing_id__409_names_its_index(database, writer, count):
    create(writer, database, {"id": "x2", "data": 1})
    body = {"create": [{"id": f"x{i}", "data": i} for i in range(count)]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "record_exists" and error["message"] == "Record 'x2' already exists."
    assert error["details"] == {"ids": ["x2"], "count": 1, "list": "create", "index": 2}


@pytest.mark.django_db(transaction=True)
def test_insert__its_table_dropped_meanwhile__table_dropped_not_record_exists():
    # the platform backend's records refer to their table's row: an insert committing after
    # another call dropped the table is refused by the foreign key, which is not a taken id
    from django.utils import timezone

    from dbproxy_app.backends import PlatformBackend, Row, TableRef
    from dbproxy_app.backends.base import TableDropped

    now = timezone.now()
    with pytest.raises(TableDropped), PlatformBackend("gone", "", {}).session() as session:
        session.insert(TableRef("orders", 987654), [Row("y", now, now, 1, {}, 2)])


def test_update__full_and_partial_with_versions(database, writer):
    create(
        writer, database, {"id": "a", "metadata": {"env": "dev", "k": "v"}, "data": {"a": 1, "b": {"c": 2}}}
    )
    replaced = writer.put(
        url(database, record="a"), {"metadata": {"env": "prod"}, "data": {"z": 1}}, format="json"
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["version"] == 2 and replaced.json()["metadata"] == {"env": "prod"}
    assert replaced["ETag"] == '"2"'
    patched = writer.patch(
        url(database, record="a"),
        {"metadata": {"team": "t1", "env": None}, "data": {"z": None, "y": {"q": 1}}, "expected_version": 2},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert body["version"] == 3 and body["metadata"] == {"team": "t1"} and body["data"] == {"y": {"q": 1}}
    assert body["created"] == replaced.json()["created"] and body["updated"] >= replaced.json()["updated"]


@pytest.mark.parametrize("version", [0, True, "2", 2**63, 99999999999999999999999])
def test_update__an_expected_version_no_record_can_have__is_400_as_in_the_query(database, writer, version):
    create(writer, database, {"id": "a", "data": 1})
    response = writer.put(url(database, record="a"), {"data": 2, "expected_version": version}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_expected_version")
    bulk = {"patch": [{"id": "a", "data": 2, "expected_version": version}]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", bulk, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_expected_version")
    assert writer.get(url(database, record="a")).json()["data"] == 1


def test_update__a_stale_version_is_409_and_changes_nothing(database, writer):
    create(writer, database, {"id": "a", "data": 1})
    writer.put(url(database, record="a"), {"data": 2}, format="json")
    for headers, body in (({"HTTP_IF_MATCH": '"1"'}, {"data": 3}), ({}, {"data": 3, "expected_version": 1})):
        response = writer.put(url(database, record="a"), body, format="json", **headers)
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert error["code"] == "version_conflict" and error["details"]["version"] == 2
    response = writer.delete(url(database, record="a"), HTTP_IF_MATCH='"1"')
    assert response.status_code == 409
    stored = writer.get(url(database, record="a")).json()
    assert stored["data"] == 2 and stored["version"] == 2
    assert (
        writer.put(url(database, record="a"), {"data": 3}, format="json", HTTP_IF_MATCH='"2"').status_code
        == 200
    )


@pytest.mark.parametrize("if_match", ['W/"1"', "1", '"1", "2"', '"x"'])
def test_update__if_match_is_one_strong_tag_or_400(database, writer, if_match):
    # If-Match compares strongly: a weak tag never matches, so it is refused, not read as "1"
    create(writer, database, {"id": "a", "data": 1})
    for method in (writer.put, writer.patch):
        response = method(url(database, record="a"), {"data": 2}, format="json", HTTP_IF_MATCH=if_match)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_if_match")
    response = writer.delete(url(database, record="a"), HTTP_IF_MATCH=if_match)
    assert response.status_code == 400
    assert writer.get(url(database, record="a")).json()["data"] == 1


def test_update_and_delete__a_missing_record_is_404(database, writer):
    # the original's update swallowed its errors: a write that changes nothing never answers success
    create(writer, database, {"id": "a", "data": 1})  # the table exists
    for method in (writer.put, writer.patch):
        response = method(url(database, record="nope"), {"data": 1}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "record_not_found"
    assert writer.delete(url(database, record="nope")).status_code == 404


def test_delete__then_it_is_gone(database, writer):
    create(writer, database, {"id": "a", "data": 1})
    assert writer.delete(url(database, record="a"), HTTP_IF_MATCH='"1"').status_code == 204
    assert writer.get(url(database, record="a")).status_code == 404


@pytest.mark.parametrize(
    ("query", "body", "code"),
    [
        ("?expected_versoin=7", None, "invalid_query"),  # a misspelt guard
        ("?meta.env=eq.prod", None, "invalid_query"),  # a filter as a guard
        ("", {"expected_version": 7}, "version_conflict"),  # the guard in the body
        ("", {"expected_versoin": 7}, "invalid_record"),
        ("?expected_version=1", {"expected_version": 7}, "invalid_expected_version"),
    ],
)
def test_delete__a_guard_is_never_skipped(database, writer, query, body, code):
    create(writer, database, {"id": "a", "metadata": {"env": "dev"}, "data": 1})
    response = writer.delete(url(database, record="a") + query, body, format="json")
    assert response.status_code in (400, 409), response.content
    assert response.json()["error"]["code"] == code
    assert writer.get(url(database, record="a")).status_code == 200
    assert writer.delete(url(database, record="a"), {"expected_version": 1}, format="json").status_code == 204


@pytest.mark.parametrize("query", ["?expected_version=7", "?expected_versoin=7", "?meta.env=eq.prod"])
def test_put_and_patch__a_query_parameter_is_refused_not_skipped(database, writer, query):
    create(writer, database, {"id": "a", "metadata": {"env": "dev"}, "data": 1})
    for method in (writer.put, writer.patch):
        response = method(url(database, record="a") + query, {"data": 2}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid_query"
    assert writer.get(url(database, record="a")).json()["version"] == 1


def test_bulk__creates_updates_and_deletes_in_one_transaction(database, writer):
    create(writer, database, {"id": "u", "data": 1})
    create(writer, database, {"id": "d", "data": 1})
    body = {
        "create": [{"id": f"n{i}", "metadata": {"i": str(i)}} for i in range(50)],
        "patch": [{"id": "u", "data": {"x": 1}, "expected_version": 1}],
        "delete": ["d"],
    }
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    assert (
        len(result["created"]) == 50 and result["updated"][0]["version"] == 2 and result["deleted"] == ["d"]
    )
    assert len(ids(writer.get(url(database) + "?limit=1000"))) == 51


@pytest.mark.parametrize(
    ("item", "status", "code"),
    [
        ({"id": "u", "data": 2, "expected_version": 7}, 409, "version_conflict"),
        ({"id": "missing", "data": 2}, 404, "record_not_found"),
        ({"id": "u", "metadata": {"k": 1}}, 400, "invalid_metadata"),
    ],
)
def test_bulk__one_bad_item_writes_nothing(database, writer, item, status, code):
    create(writer, database, {"id": "u", "data": 1})
    events_before = Event.objects.filter(type__startswith="db.record.").count()
    body = {"create": [{"id": f"n{i}"} for i in range(20)], "update": [item]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["details"].get("index", 0) == 0
    assert ids(writer.get(url(database))) == ["u"]
    assert writer.get(url(database, record="u")).json()["version"] == 1
    assert Event.objects.filter(type__startswith="db.record.").count() == events_before


@pytest.mark.parametrize("value", [{}, "", 0, "abc"])
def test_bulk__a_part_that_is_not_a_list__400_naming_it(database, writer, value):
    create(writer, database, {"id": "u", "data": 1})
    bulk = f"/api/v1/db/{database}/orders/bulk/"

    response = writer.post(bulk, {"create": value}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "create"}
    assert writer.post(bulk, {"create": None}, format="json").status_code == 200  # null: none


def test_bulk__an_unknown_part__400_naming_it(database, writer):
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", {"creat": [{"id": "x"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "creat"}


def test_bulk__a_delete_item_with_an_unknown_field__400_and_nothing_deleted(database, writer):
    # a misspelt guard must not turn into a delete whatever the version
    create(writer, database, {"id": "a", "data": 1})
    body = {"delete": [{"id": "a", "expected_versoin": 7}]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_record"
    assert error["details"] == {"index": 0, "field": "expected_versoin"}
    assert writer.get(url(database, record="a")).status_code == 200


def test_bulk__an_id_twice__400_naming_the_second_item(database, writer):
    create(writer, database, {"id": "a", "data": 1})
    body = {"create": [{"id": "b"}], "patch": [{"id": "a", "data": 2}], "delete": ["c", "a"]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "duplicate_id"
    assert error["details"] == {"id": "a", "list": "delete", "index": 1}
    assert writer.get(url(database, record="a")).json()["data"] == 1


def test_bulk__a_duplicate_create_writes_nothing(database, writer):
    create(writer, database, {"id": "taken", "data": 1})
    body = {"create": [{"id": "fresh"}, {"id": "taken"}]}
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", body, format="json")
    assert response.status_code == 409 and response.json()["error"]["details"]["ids"] == ["taken"]
    assert writer.get(url(database, record="fresh")).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"metadata": {"env": 5}}, "invalid_metadata"),
        ({"metadata": {"env": None}}, "invalid_metadata"),
        ({"metadata": {"env": ["a"]}}, "invalid_metadata"),
        ({"metadata": {"bad key": "v"}}, "invalid_metadata"),
        ({"metadata": "env=prod"}, "invalid_metadata"),
        ({"metadata": {"k": "a\x00b"}}, "invalid_metadata"),
        ({"data": {"a": "\x00"}}, "invalid_data"),
        ({"data": 1, "bytes": "AAAA"}, "invalid_record"),
        ({"bytes": "not base64!"}, "invalid_bytes"),
        ({"id": "has space"}, "invalid_id"),
        ({"id": "x" * 200}, "invalid_id"),
        ({"id": "a'; DROP TABLE x; --"}, "invalid_id"),
        ({"surprise": 1}, "invalid_record"),
        ([1, 2], "invalid_record"),
    ],
)
def test_create__bad_input_is_400_naming_it(database, writer, body, code):
    response = writer.post(url(database), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code


def test_create__an_oversized_record_is_413(database, writer, settings):
    settings.DB_MAX_RECORD_BYTES = 1000
    response = writer.post(url(database), {"id": "big", "data": "x" * 2000}, format="json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "record_too_large"
    create(writer, database, {"id": "small", "data": "x"})
    response = writer.patch(url(database, record="small"), {"data": "y" * 2000}, format="json")
    assert response.status_code == 413
    assert writer.get(url(database, record="small")).json()["data"] == "x"


INJECTIONS = [
    "orders; DROP TABLE x",
    'orders"; DROP TABLE x; --',
    "Orders",
    "1orders",
    "orders--",
    "a" * 49,
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_names_built_to_inject_sql__are_refused_on_every_backend(database, writer, manager, name):
    # the original ran CREATE DATABASE IF NOT EXISTS + name: names are a strict grammar, and quoted
    create(writer, database, {"id": "keep", "data": 1})
    for response in (
        writer.post(url(database, name), {"data": 1}, format="json"),
        writer.get(url(database, name)),
        writer.get(url(name)),
        manager.post(f"/api/v1/db/databases/{database}/tables/", {"name": name}, format="json"),
        manager.post("/api/v1/db/databases/", {"name": name}, format="json"),
    ):
        assert response.status_code in (400, 404), (name, response.status_code, response.content)
        assert "error" in response.json()
    assert writer.get(url(database, record="keep")).json()["data"] == 1


QUERY_INJECTIONS = [
    "meta.env=eq.x' OR '1'='1",
    "meta.env=like.%25",
    "meta.x') OR 1=1 --=eq.a",
    "data->a'||'=eq.1",
    "or=(meta.env.eq.a),id.eq.b)",
    "order=id; DROP TABLE x",
    "select=id,(SELECT 1)",
    "id=in.(a) OR 1=1",
    'meta.env=eq."; DROP TABLE x; --',
]


@pytest.mark.parametrize("query", QUERY_INJECTIONS)
def test_query_strings_built_to_inject_sql__match_literally_or_are_400(database, writer, query):
    create(writer, database, {"id": "keep", "metadata": {"env": "prod"}, "data": {"a": 1}})
    response = writer.get(url(database) + "?" + query)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert ids(response) == []  # taken literally: nothing has that value
    else:
        assert response.json()["error"]["code"] == "invalid_query"
    assert writer.get(url(database, record="keep")).status_code == 200


@pytest.mark.parametrize(
    ("query", "term"),
    [
        ("meta.env=equals.prod", "equals.prod"),
        ("meta.env=prod", "prod"),
        ("bogus=eq.1", "bogus"),
        ("meta.=eq.1", "meta."),
        ("data->=eq.1", "data->"),
        ("data->a->>b->c=eq.1", "data->a->>b->c"),
        ("created=gt.yesterday", "yesterday"),
        ("version=gt.one", "one"),
        ('data->a=gt."x"', '"x"'),
        ("data->a=eq.{bad", "{bad"),
        ("data->a=like.x*", "data->a.like"),
        ("version=like.1*", "version.like"),
        ("meta.env=in.prod", "prod"),
        ("meta.env=is.maybe", "is.maybe"),
        ("or=meta.env.eq.a", "meta.env.eq.a"),
        ("or=(meta.env.eq.a", "(end)"),
        ("or=(meta.env.eq.a))", ")"),
        ("or=(nope.eq.a)", "nope.eq.a)"),
        ("order=metadata.desc", "metadata.desc"),
        ("order=id.sideways", "id.sideways"),
        ("select=id,password", "password"),
        ("limit=-1", "-1"),
        ("limit=ten", "ten"),
        ("offset=10", "10"),
        ("cursor=garbage", "garbage"),
        # given twice: the last one won, the first unread
        ("order=id.asc&order=version.desc", "version.desc"),
        ("select=id&select=data", "data"),
        ("limit=1&limit=2", "2"),
        ("cursor=a&cursor=b", "b"),
    ],
)
def test_malformed_query_grammar__is_400_naming_the_term(database, writer, query, term):
    create(writer, database, {"id": "keep", "data": 1})
    response = writer.get(url(database) + "?" + query)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_query" and error["details"]["term"] == term, error
    assert term[:30] in error["message"]


def test_query__limit_is_capped_and_pages_follow_next(database, writer, settings):
    settings.DB_MAX_LIMIT = 3
    writer.post(
        f"/api/v1/db/{database}/orders/bulk/", {"create": [{"id": f"r{i}"} for i in range(7)]}, format="json"
    )
    seen, link = [], url(database) + "?order=id.asc&limit=50"
    while link:
        response = writer.get(link)
        page = ids(response)
        assert len(page) <= 3
        seen += page
        link = response.json()["next"]
    assert seen == [f"r{i}" for i in range(7)]


def test_query__counts_only_on_request_in_content_range(database, writer):
    writer.post(
        f"/api/v1/db/{database}/orders/bulk/",
        {"create": [{"id": f"r{i}", "metadata": {"p": str(i % 2)}} for i in range(5)]},
        format="json",
    )
    plain = writer.get(url(database) + "?meta.p=eq.1&limit=1")
    assert plain.json()["count"] is None and plain["Content-Range"] == "0-0/*"
    counted = writer.get(url(database) + "?meta.p=eq.1&limit=1", HTTP_PREFER="count=exact")
    assert counted.json()["count"] == 2 and counted["Content-Range"] == "0-0/2"
    assert counted["Preference-Applied"] == "count=exact"
    for mode in ("planned", "estimated"):
        response = writer.get(url(database) + "?limit=1", HTTP_PREFER=f"count={mode}")
        assert response.status_code == 200 and response.json()["count"] >= 0
    bad = writer.get(url(database), HTTP_PREFER="count=all")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_prefer"


def test_query__select_picks_fields(database, writer):
    create(writer, database, {"id": "a", "metadata": {"k": "v"}, "data": {"big": "x"}})
    response = writer.get(url(database) + "?select=id,metadata")
    assert response.json()["results"] == [{"id": "a", "metadata": {"k": "v"}}]
    one = writer.get(url(database, record="a") + "?select=id,version")
    assert one.json() == {"id": "a", "version": 1}


@pytest.mark.parametrize("query", ["meta.env=eq.x", "limit=1", "foo=1", "select=id&select=data"])
def test_read_by_id__a_parameter_other_than_select__is_400_naming_it(database, writer, query):
    create(writer, database, {"id": "a", "metadata": {"env": "prod"}})
    response = writer.get(url(database, record="a") + "?" + query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_query" and error["details"]["parameter"] == query.split("=")[0]


@pytest.mark.parametrize("record", [None, "a"])
def test_a_range_header__is_400_not_ignored(database, writer, record):
    # PostgREST pages by Range; a client doing so here would get its first page again and again
    create(writer, database, {"id": "a"})
    response = writer.get(url(database, record=record), HTTP_RANGE="10-19")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["parameter"] == "Range"


def test_unknown_database_or_table__is_404(database, writer):
    response = writer.get(url("nosuchdb"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "database_not_found"
    response = writer.get(url(database, "nosuchtable"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "table_not_found"
    response = writer.get(url(database, "nosuchtable", "x"))
    assert response.status_code == 404


def test_first_write__creates_the_table(database, writer, reader):
    assert reader.get(f"/api/v1/db/databases/{database}/tables/").json()["results"] == []
    create(writer, database, {"id": "a"}, table="fresh")
    tables = reader.get(f"/api/v1/db/databases/{database}/tables/").json()["results"]
    assert [t["name"] for t in tables] == ["fresh"]


@pytest.mark.parametrize(
    "data", ["text", 0, -2.5, True, False, None, [], {}, {"a": [1, {"b": None}]}, "é ☃ 𝄞"]
)
def test_data__any_json_value_round_trips(database, writer, data):
    made = create(writer, database, {"id": "a", "data": data})
    assert made["data"] == data
    assert writer.get(url(database, record="a")).json()["data"] == data
    assert writer.get(url(database)).json()["results"][0]["data"] == data


@pytest.mark.parametrize(
    "query",
    [
        "meta.env=like.a%00*",
        "id=like.%00",
        'data->a=eq."%5Cu0000"',
        'data->a=eq."%5Cud800"',
        "data->>a=ilike.%00",
    ],
)
def test_query_values_no_database_can_compare__are_400_on_every_backend(database, writer, query):
    create(writer, database, {"id": "keep", "metadata": {"env": "prod"}, "data": {"a": 1}})
    response = writer.get(url(database) + "?" + query)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_query"


def test_objects__equal_whatever_their_keys_order_on_every_backend(database, writer):
    # the platform backend kept the client's key order on SQLite, where the text is compared
    create(writer, database, {"id": "a", "data": {"o": {"b": 1, "a": 2}}})
    create(writer, database, {"id": "b", "data": {"o": {"a": 2}}})
    merged = writer.patch(url(database, record="b"), {"data": {"o": {"b": 1}}}, format="json")
    assert merged.status_code == 200, merged.content

    def found(condition: str) -> list[str]:
        return ids(writer.get(url(database) + "?" + urlencode({"data->o": condition, "order": "id.asc"})))

    assert found('eq.{"a":2,"b":1}') == ["a", "b"]
    assert found('eq.{"b":1,"a":2}') == ["a", "b"]
    assert found('neq.{"a":2,"b":1}') == []


@pytest.mark.parametrize("version", [2**63, -(2**63) - 1, 10**30])
def test_query__a_cursor_with_a_version_beyond_64_bits__400_not_500(database, writer, version):
    create(writer, database, {"id": "a", "data": 1})
    raw = json.dumps(["version", True, version, "a"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = writer.get(url(database) + f"?order=version.desc&cursor={cursor}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["parameter"] == "cursor"


def test_patch__metadata_merged_beyond_64_keys__400_and_nothing_written(database, writer):
    create(writer, database, {"id": "a", "metadata": {f"k{i}": "v" for i in range(60)}})
    more = {"metadata": {f"n{i}": "v" for i in range(5)}}
    response = writer.patch(url(database, record="a"), more, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_metadata"
    bulk = writer.post(f"/api/v1/db/{database}/orders/bulk/", {"patch": [{"id": "a", **more}]}, format="json")
    assert bulk.status_code == 400 and bulk.json()["error"]["details"] == {"index": 0}
    stored = writer.get(url(database, record="a")).json()
    assert stored["version"] == 1 and len(stored["metadata"]) == 60
    swapped = {"metadata": {"k0": None, "n0": "v"}}  # as many keys as before: fine
    assert writer.patch(url(database, record="a"), swapped, format="json").status_code == 200


def test_query__a_numeric_path_step_is_a_key_never_an_array_index(database, writer):
    # as the evaluator and SQLite read it: PostgreSQL's #> alone would index the array
    create(writer, database, {"id": "arr", "data": {"list": [{"a": 1}, {"a": 2}]}})
    create(writer, database, {"id": "obj", "data": {"list": {"0": {"a": 1}}}})
    for query, expected in [
        ("data->list->0->a=eq.1", ["obj"]),
        ("data->list->1->a=gt.1", []),
        ("data->list->-1->a=is.null", ["obj", "arr"]),
        ("data->list->0->>a=eq.1", ["obj"]),
        ("data->list->0=is.null", ["arr"]),
        ("data->list->0->a=in.(1,2)", ["obj"]),
        ("order=data->list->0->a.asc.nullslast", ["obj", "arr"]),
    ]:
        assert ids(writer.get(url(database) + "?" + query)) == expected, query
