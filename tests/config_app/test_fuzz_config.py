"""Config paths and documents on hostile input.

The pure functions: any text is a path or ``InvalidPath``; a value set at a path is read back
there, and deleting it removes it; a deep merge keeps what the overlay does not touch.  Through the
API: writing any JSON value at any path, any layer document, and resolving any path answers a
success or a documented 4xx in the error shape, never a 5xx, and a refused write changes nothing.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from config_app.documents import (
    MAX_DEPTH,
    deep_merge,
    delete_at,
    diff,
    get_at,
    missing,
    parse_path,
    set_at,
)
from config_app.errors import InvalidPath
from config_app.models import Revision

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
KEY = st.from_regex(r"\A[A-Za-z0-9_\-:@$][A-Za-z0-9_\-.:@$]{0,11}\Z")
GOOD_PATH = st.lists(KEY, min_size=1, max_size=5).map("/".join)
PATH = st.one_of(
    GOOD_PATH,
    st.text(max_size=60),
    st.sampled_from(["", "/", "//", ".", "..", "a/../b", "a//b", "a/./b", "x" * 129, "/".join("a" * 40)]),
    st.lists(st.sampled_from(["a", ".", "..", "", "é", "\x00", "0", "_sealed"]), max_size=6).map("/".join),
)
DOCUMENT = st.dictionaries(KEY, JSON, max_size=5)


@settings(max_examples=2000, deadline=None)
@given(PATH)
def test_parse_path__any_text__segments_or_invalid_path(path):
    try:
        segments = parse_path(path)
    except InvalidPath as exc:
        event("InvalidPath")
        assert exc.details["path"] == path[:200]
        return
    event("parsed")
    assert "/".join(segments) == path  # taken as written: db// or /db never parses as db
    assert len(segments) <= MAX_DEPTH
    assert all(segment and segment not in {".", ".."} for segment in segments)
    assert parse_path("/".join(segments)) == segments


@settings(max_examples=500, deadline=None)
@given(DOCUMENT, GOOD_PATH, JSON)
def test_set_get_delete__a_value_set_is_read_back_and_deleted(document, path, value):
    segments = parse_path(path)
    try:
        written = set_at(document, segments, value)
    except InvalidPath as exc:
        assert exc.code == "path_conflict"  # a prefix of the path holds something that is not an object
        return
    assert get_at(written, segments) == value
    assert document == set_at(document, (), document)  # the original is a copy, untouched
    deleted, found = delete_at(written, segments)
    assert found
    assert missing(get_at(deleted, segments))


@settings(max_examples=500, deadline=None)
@given(DOCUMENT, DOCUMENT)
def test_deep_merge__keeps_what_the_overlay_leaves_and_diff_names_the_rest(base, overlay):
    merged = deep_merge(base, overlay)
    for key, value in base.items():
        if key not in overlay:
            assert merged[key] == value
    for key, value in overlay.items():
        if value is None:
            assert key not in merged
    changes = diff(base, merged)
    assert set(changes) == {"added", "removed", "changed"}


# --- Through the API -----------------------------------------------------------------------------

LAYER = "/api/v1/config/namespaces/app/layers/prod/"


@pytest.mark.django_db
def test_api__any_value_at_any_path__written_or_refused(rw):
    assert rw.post("/api/v1/config/namespaces/", {"name": "app"}, format="json").status_code == 201

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(PATH, JSON, st.sampled_from(["put", "patch", "delete", "get"]))
    def write(path, value, method):
        before = Revision.objects.count()
        url = LAYER + "values/" + quote(path, safe="/")
        body = {"value": value} if method != "get" else None
        response = getattr(rw, method)(url, body, format="json")
        event(f"{method} {response.status_code}")
        assert response.status_code in (200, 201, 400, 404, 409, 413), (
            response.status_code,
            response.content,
        )
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}
            assert Revision.objects.count() == before

    write()


@pytest.mark.django_db
def test_api__any_layer_document_and_resolve_path__answers_or_refuses(rw):
    assert rw.post("/api/v1/config/namespaces/", {"name": "app"}, format="json").status_code == 201

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(DOCUMENT, JSON), PATH)
    def put_and_resolve(document, path):
        before = Revision.objects.count()
        written = rw.put(LAYER, {"data": document}, format="json")
        event(f"put {written.status_code}")
        assert written.status_code in (200, 201, 400, 409, 413), (written.status_code, written.content)
        if written.status_code >= 400:
            assert set(written.json()["error"]) == {"code", "message", "details"}
            assert Revision.objects.count() == before
        resolved = rw.get("/api/v1/config/namespaces/app/resolve", {"env": "prod", "path": path})
        event(f"resolve {resolved.status_code}")
        assert resolved.status_code in (200, 400, 404), (resolved.status_code, resolved.content)

    put_and_resolve()


#: JSON Schemas: real keywords with values of the right kind or not, $refs that resolve or not.
SCHEMA = st.recursive(
    st.one_of(
        st.booleans(),
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["object", "string", "integer", "array", "nope", 3]),
                "pattern": st.sampled_from(["^a", "(", "[", "\\", "a{2,1}", "(?P<x>a)"]),
                "minimum": st.one_of(st.integers(), st.text(max_size=3)),
                "maxLength": st.one_of(st.integers(-1, 5), st.floats(allow_nan=False, allow_infinity=False)),
                "required": st.one_of(st.lists(KEY, max_size=3), JSON),
                "enum": st.one_of(st.lists(JSON, max_size=3), JSON),
                "format": st.sampled_from(["email", "ipv4", "regex", "date-time", "unknown"]),
                "$ref": st.sampled_from(["#", "#/definitions/a", "#/$defs/x", "http://127.0.0.1:9/s", "x"]),
                "$schema": st.sampled_from(
                    [
                        "https://json-schema.org/draft/2020-12/schema",
                        "http://json-schema.org/draft-07/schema#",
                        "http://example.com/nope",
                        "",
                    ]
                ),
            },
        ),
    ),
    lambda inner: st.fixed_dictionaries(
        {},
        optional={
            "properties": st.dictionaries(KEY, inner, max_size=3),
            "items": inner,
            "additionalProperties": inner,
            "definitions": st.dictionaries(st.just("a"), inner, max_size=1),
            "$defs": st.dictionaries(st.just("x"), inner, max_size=1),
            "anyOf": st.lists(inner, min_size=1, max_size=2),
            "not": inner,
        },
    ),
    max_leaves=8,
)


@pytest.mark.django_db
def test_api__any_json_schema_then_any_layer__answers_or_refuses(rw):
    counter = iter(range(1_000_000))

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(SCHEMA, JSON), DOCUMENT)
    def create_and_write(schema, document):
        name = f"ns{next(counter)}"
        created = rw.post("/api/v1/config/namespaces/", {"name": name, "json_schema": schema}, format="json")
        event(f"namespace {created.status_code}")
        assert created.status_code in (201, 400), (created.status_code, created.content)
        if created.status_code == 400:
            assert set(created.json()["error"]) == {"code", "message", "details"}
            return
        layer = f"/api/v1/config/namespaces/{name}/layers/prod/"
        written = rw.put(layer, {"data": document}, format="json")
        event(f"layer {written.status_code}")
        assert written.status_code in (200, 201, 400), (written.status_code, written.content)

    create_and_write()
