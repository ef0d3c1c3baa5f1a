"""The bulk path's shortcuts hold what the slow path held: values COPYed in text format come back
as they were, data is checked by its encoding (walked only when the encoding is in doubt), and
the garbage collector paused during a bulk call runs again after it, answered or refused."""

from __future__ import annotations

import base64
import gc
import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from dbproxy_app.backends.base import Row, copy_records
from dbproxy_app.records import MAX_DEPTH
from tests.dbproxy_app.test_records_api import url

AWKWARD = [
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "literal \\u0000 text",
    "quote\" and 'single'",
    "unicode é ✓ \u2028 𝄞",
    "\x01\x1f control",
    "",
]


def nested(depth: int) -> object:
    value: object = "bottom"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def bulk(api, database, body):
    # JSON as a client sends it: escapes (\\u0000, \\ud800) for what UTF-8 cannot carry
    text = json.dumps(body)
    return api.post(f"/api/v1/db/{database}/orders/bulk/", text, content_type="application/json")


def test_copy_records__escape_what_the_text_format_reserves():
    at = datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)
    rows = [
        Row("a\tb\\c\nd\re", at, at, 7, {"k": "back\\slash\ttab"}, None, b"\x00\xff"),
        Row("x", at, at, 1, {}, {"n": "line\nbreak"}),
    ]
    stamp = "2024-05-01T12:00:00.000005+00:00"
    assert list(copy_records(rows, leading=(3, None))) == [
        f"3\t\\N\ta\\tb\\\\c\\nd\\re\t{stamp}\t{stamp}\t7\t"
        '{"k":"back\\\\\\\\slash\\\\ttab"}\t\\N\t\\\\x00ff\n'
        f"3\t\\N\tx\t{stamp}\t{stamp}\t1\t{{}}\t"
        '{"n":"line\\\\nbreak"}\t\\N\n'
    ]
    assert len(list(copy_records(rows * 3, per_write=4))) == 2
    with pytest.raises(TypeError):
        list(copy_records(rows, leading=(1.5,)))


def test_a_bulk_create__stores_awkward_strings_as_given_on_every_backend(database, writer):
    # 60 records: at least the COPY threshold, so PostgreSQL backends take the COPY path
    records = [
        {
            "id": f"r{i}",
            "metadata": {"v": AWKWARD[i % len(AWKWARD)]},
            "data": {AWKWARD[i % len(AWKWARD)]: [AWKWARD[(i + 1) % len(AWKWARD)], i]},
        }
        for i in range(60)
    ]
    records.append({"id": "blob", "bytes": base64.b64encode(b"\\\t\n\x00").decode()})
    response = bulk(writer, database, {"create": records})
    assert response.status_code == 200, response.content
    for record in [*records[: len(AWKWARD) + 1], records[-1]]:
        got = writer.get(url(database, record=record["id"])).json()
        for key in ("metadata", "data", "bytes"):
            if key in record:
                assert got[key] == record[key], (record["id"], key)
    found = writer.get(url(database) + "?meta.v=eq." + "back%5Cslash").json()["results"]
    assert sorted(r["id"] for r in found) == sorted(
        r["id"] for r in records[:-1] if r["metadata"]["v"] == "back\\slash"
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"a": ["x", {"b": "\x00"}]}, "invalid_data"),
        ({"\x00key": 1}, "invalid_data"),
        ({"a": "lone \ud800"}, "invalid_data"),
        ({"\udfff": 1}, "invalid_data"),
        (nested(MAX_DEPTH + 1), "invalid_data"),
    ],
)
def test_a_bulk_create__refuses_unstorable_data_and_writes_nothing(database, writer, data, code):
    assert bulk(writer, database, {"create": [{"id": "kept"}]}).status_code == 200
    good = [{"id": f"g{i}", "data": {"n": i}} for i in range(60)]
    response = bulk(writer, database, {"create": [*good, {"id": "bad", "data": data}]})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["details"]["index"] == 60
    assert [r["id"] for r in writer.get(url(database)).json()["results"]] == ["kept"]


def test_data_as_deep_as_allowed__and_text_that_only_looks_unstorable__are_stored(database, writer):
    deepest = nested(MAX_DEPTH)
    brackets = {"s": "[" * 200 + "{" * 200, "t": "\\u0000 \\ud800"}
    body = {"create": [{"id": "deep", "data": deepest}, {"id": "brackets", "data": brackets}]}
    assert bulk(writer, database, body).status_code == 200
    assert writer.get(url(database, record="deep")).json()["data"] == deepest
    assert writer.get(url(database, record="brackets")).json()["data"] == brackets


def test_metadata_with_a_lone_surrogate__is_400(database, writer):
    text = json.dumps({"id": "m", "metadata": {"k": "a\udc00"}})
    response = writer.post(url(database), text, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_metadata"


def test_a_number_out_of_range__is_400_on_every_write_and_changes_nothing(database, writer):
    """``1e999`` is valid JSON that Python reads as infinity, which JSON (and every database's JSON
    type) cannot hold: it was a 409 "exists" on create and a 500 on a patch."""
    assert bulk(writer, database, {"create": [{"id": "kept", "data": {"x": 1}}]}).status_code == 200
    writes = [
        ("post", url(database), '{"id": "inf", "data": 1e999}'),
        ("post", f"/api/v1/db/{database}/orders/bulk/", '{"create": [{"id": "inf", "data": {"x": -1e999}}]}'),
        ("patch", url(database, record="kept"), '{"data": {"x": 1e999}}'),
        ("put", url(database, record="kept"), '{"data": [1e999]}'),
    ]
    for method, path, text in writes:
        response = getattr(writer, method)(path, text, content_type="application/json")

        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_data"), path
    assert [(r["id"], r["data"]) for r in writer.get(url(database)).json()["results"]] == [("kept", {"x": 1})]


def test_the_collector__runs_again_after_a_bulk_call_answered_or_refused(database, writer):
    assert gc.isenabled()
    assert bulk(writer, database, {"create": [{"id": "a"}]}).status_code == 200
    assert gc.isenabled()
    assert bulk(writer, database, {"create": [{"id": "a"}]}).status_code == 409
    assert gc.isenabled()
    assert bulk(writer, database, {"create": "nope"}).status_code == 400
    assert gc.isenabled()


def test_the_collector__left_alone_when_something_else_disabled_it(database, writer):
    gc.disable()
    try:
        assert bulk(writer, database, {"create": [{"id": "a"}]}).status_code == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "row",
    [
        Row("a", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, 1, 2, 3, 4, tzinfo=UTC), 3, {}),
        Row(
            "b-1",
            datetime(2024, 5, 1, tzinfo=UTC),
            datetime(2024, 5, 1, tzinfo=UTC),
            1,
            {"k": "é\u2028"},
            {"x": [1, 2.5, None, True, {"y": '\u2029"\\'}]},
        ),
        Row(
            "c",
            datetime(2024, 5, 1, tzinfo=UTC),
            datetime(2024, 5, 1, tzinfo=UTC),
            9,
            {"a": "b"},
            None,
            bytes(range(256)),
        ),
        Row("d", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC), 2, {}, "text"),
    ],
)
def test_render_json__is_the_renderers_answer_byte_for_byte(row):
    from rest_framework.renderers import JSONRenderer

    from dbproxy_app.records import render, render_json

    expected = JSONRenderer().render({"created": [render(row)]})
    written = '{"created":[' + render_json(row, {}) + "]}"
    written = written.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    assert written.encode() == expected


def test_a_bulk_answer__is_what_the_records_read_back_as(database, writer):
    body = {
        "create": [
            {"id": f"r{i}", "metadata": {"i": str(i)}, "data": {"v": ["é\u2028", i]}} for i in range(60)
        ],
    }
    answer = bulk(writer, database, body)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    created = answer.json()["created"]
    assert [r["id"] for r in created] == [f"r{i}" for i in range(60)]
    for record in created[:3]:
        assert writer.get(url(database, record=record["id"])).json() == record
    body = {"patch": [{"id": "r1", "data": {"w": 1}}], "delete": ["r2"]}
    answer = bulk(writer, database, body).json()
    assert answer["updated"] == [writer.get(url(database, record="r1")).json()]
    assert answer["deleted"] == ["r2"] and answer["created"] == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the platform backend COPYs on PostgreSQL")
def test_bulk_create__the_connection_lost_during_the_copy__503_and_nothing_written(
    make_database, writer, monkeypatch, transactional_db
):
    import psycopg

    database = make_database("platform")

    def lost(self, statement, *args, **kwargs):
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

    monkeypatch.setattr(psycopg.Cursor, "copy", lost)
    answer = bulk(writer, database, {"create": [{"id": f"r{n}"} for n in range(60)]})
    assert answer.status_code == 503, answer.content
    monkeypatch.undo()
    assert writer.get(url(database)).json()["results"] == []
