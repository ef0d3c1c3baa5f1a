"""Odd and malformed input: every refusal is a 4xx in the error shape and writes nothing."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config_app.models import Namespace, Revision
from platformsite.asgi import application
from tests.config_app.conftest import base

pytestmark = pytest.mark.django_db


def layer_url(ns: str, env: str = "default") -> str:
    return base(ns) + f"layers/{env}/"


def numbers(ns: str, env: str = "default") -> list[int]:
    return list(
        Revision.objects.filter(namespace__name=ns, env=env)
        .order_by("number")
        .values_list("number", flat=True)
    )


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code is not None:
        assert error["code"] == code, error
    return error


def nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"x": NaN}}',
        b'{"data": {"x": -Infinity}}',
        b'{"data": {"big": 1e999}}',
        b"[1]",
        b'"x"',
        b"null",
    ],
)
def test_put_layer__odd_json__is_400_and_writes_nothing(rw, make_namespace, body):
    make_namespace("payments")
    assert_error(rw.put(layer_url("payments"), body, content_type="application/json"), 400)
    assert numbers("payments") == []


def test_put_layer__json_too_deep_to_parse__is_400_parse_error(rw, make_namespace):
    make_namespace("payments")
    body = b'{"data": ' + nested(5000) + b"}"
    assert_error(rw.put(layer_url("payments"), body, content_type="application/json"), 400, "parse_error")
    assert numbers("payments") == []


@pytest.mark.parametrize("depth", [101, 600, 900])
def test_put_layer__data_nested_too_deeply__is_400_and_writes_nothing(rw, make_namespace, depth):
    make_namespace("payments")
    body = b'{"data": ' + nested(depth) + b"}"
    error = assert_error(rw.put(layer_url("payments"), body, content_type="application/json"), 400, "invalid")
    assert error["details"] == {"nesting": depth, "limit": 100}
    assert numbers("payments") == []


def test_put_layer__data_nested_100_deep__is_stored(rw, make_namespace):
    make_namespace("payments")
    body = b'{"data": ' + nested(100) + b"}"
    assert rw.put(layer_url("payments"), body, content_type="application/json").status_code == 200


def test_put_value__deep_value_below_a_path__is_400_and_writes_nothing(rw, make_namespace):
    make_namespace("payments")
    url = layer_url("payments") + "values/" + "/".join(["k"] * 30)
    body = b'{"value": ' + nested(600) + b"}"
    assert_error(rw.put(url, body, content_type="application/json"), 400, "invalid")
    body = b'{"value": ' + nested(75) + b"}"  # 30 + 75 levels
    assert_error(rw.put(url, body, content_type="application/json"), 400, "invalid")
    assert numbers("payments") == []


def test_put_layer__unicode_keys__round_trip(rw, make_namespace):
    make_namespace("payments")
    data = {"é😀": {"": 1, "k": "v\u2028"}}
    response = rw.put(layer_url("payments"), {"data": data}, format="json")
    assert response.status_code == 200
    assert rw.get(layer_url("payments")).json()["data"] == data


@pytest.mark.parametrize(
    ("data", "where"),
    [({"k\u0000ey": 1}, "k\\u0000ey"), ({"a": ["x", "v\u0000"]}, "a/1"), ({"a": {"b": "\u0000"}}, "a/b")],
)
def test_put_layer__a_nul_character__is_400_on_every_backend_and_writes_nothing(
    rw, make_namespace, data, where
):
    make_namespace("payments")
    response = rw.put(layer_url("payments"), {"data": data}, format="json")
    assert assert_error(response, 400, "invalid")["details"] == {"data": where}
    assert numbers("payments") == []


def test_put_value__a_nul_character__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(f"{layer_url('payments')}values/db/host", {"value": "a\u0000"}, format="json")
    assert assert_error(response, 400, "invalid")["details"] == {"value": "/"}
    assert numbers("payments") == []


# --- headers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ['"\u00b2"', "\u00b9", 'W/"\u00b3"', '"-1"', '"1", "2"', '""', "W/", 'W/"0"', "0", '"0']
)
def test_put_layer__if_match_not_an_ascii_number__is_400_invalid_if_match(rw, make_namespace, value):
    make_namespace("payments")
    response = rw.put(layer_url("payments"), {"data": {}}, format="json", HTTP_IF_MATCH=value)
    assert_error(response, 400, "invalid_if_match")
    assert numbers("payments") == []


@pytest.mark.parametrize("value", ['"1-abc"', "W/", "\u00b2", "", '*, "1-abc"'])  # "*" alone: 304
def test_resolve__odd_if_none_match__answers_200(rw, make_namespace, value):
    make_namespace("payments")
    assert rw.get(base("payments") + "resolve", HTTP_IF_NONE_MATCH=value).status_code == 200


# --- query strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2024-13-45T00:00:00Z", "2024-02-30T10:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01T00:00:00+99:00"],
)
def test_audit__well_formed_but_impossible_time__is_400(rw, make_namespace, value):
    make_namespace("payments")
    for url in ("/api/v1/config/audit/", base("payments") + "audit/"):
        for name in ("from", "to"):
            assert_error(rw.get(url, {name: value}), 400, "invalid")


@pytest.mark.parametrize(
    "query, status, code",
    [
        ("from=yesterday", 400, "invalid"),
        ("cursor=garbage", 400, "invalid_cursor"),
        ("page_size=0", 400, "invalid"),  # DRF alone fell back to the default page size
        ("page_size=abc", 400, "invalid"),
        ("page_size=-1", 400, "invalid"),
        ("page_size=1.5", 400, "invalid"),
        ("page_size=5000", 200, None),  # taken as the largest, 1000
    ],
)
def test_audit__odd_query__is_the_right_status(rw, make_namespace, query, status, code):
    make_namespace("payments")
    response = rw.get("/api/v1/config/audit/?" + query)
    if code is None:
        assert response.status_code == status, response.content
    else:
        assert_error(response, status, code)


@pytest.mark.parametrize(
    "query, status",
    [
        ("wait=1e3", 400),
        ("wait=-1", 400),
        ("wait=0&revision=-1", 400),
        ("wait=0&revision=abc", 400),
        ("revision=abc", 400),  # without wait too (it was ignored)
        ("revision=-1", 400),
        ("wait=0&revision=99999999999999999999999", 200),
        ("env=", 400),
        ("env=A", 400),
        ("path=a//b", 400),
        ("path=a/", 400),  # not the path a
        ("path=/a", 400),
        ("path=", 400),
        ("path=..", 400),
        ("path=a/../b", 400),
        ("path=%00", 400),
        ("path=" + "a/" * 40, 400),
    ],
)
def test_resolve__odd_query__is_the_right_status(rw, make_namespace, put_layer, query, status):
    make_namespace("payments")
    put_layer("payments", "default", {"a": {"b": 1}})
    response = rw.get(base("payments") + "resolve?" + query)
    assert response.status_code == status, response.content
    if status >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_resolve__path_segment_with_a_trailing_newline__is_400_invalid_path(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a\n": 1})
    assert_error(rw.get(base("payments") + "resolve", {"path": "a\n"}), 400, "invalid_path")


@pytest.mark.parametrize("number", ["99999999999999999999999", str(2**63), str(2**31)])
def test_revision_detail__huge_number__is_404(rw, make_namespace, put_layer, number):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert_error(rw.get(layer_url("payments") + f"revisions/{number}/"), 404, "not_found")


@pytest.mark.parametrize(
    "query, status",
    [("from=99999999999999999999", 404), ("to=99999999999999999999", 404), ("from=-1", 400), ("to=x", 400)],
)
def test_diff__bad_numbers__is_4xx(rw, make_namespace, put_layer, query, status):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert_error(rw.get(layer_url("payments") + "diff?" + query), status)


@pytest.mark.parametrize(
    "revision, status",
    [(99999999999999999999, 404), (2**63, 404)] + [(r, 400) for r in (-1, 0, "x", 1.5, None, True, [1])],
)
def test_rollback__bad_revision__is_4xx_and_writes_nothing(rw, make_namespace, put_layer, revision, status):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.post(layer_url("payments") + "rollback", {"revision": revision}, format="json")
    assert_error(response, status, "not_found" if status == 404 else "invalid")
    assert numbers("payments") == [1]


@pytest.mark.parametrize(
    "path, expected",
    [
        ("a%2Fb", {"get": 200, "put": 200, "patch": 200, "delete": 200}),  # the path a/b
        ("a/", {"get": 200, "put": 200, "patch": 200, "delete": 200}),  # the address's slash: the path a
        *[  # taken as written: a// is not the path a
            (path, dict.fromkeys(("get", "put", "patch", "delete"), "invalid_path"))
            for path in ("a//b", "a//", "/a", "a%2F/", ".", "..", "a/./b", "%2E%2E", "a%00b")
        ],
        (
            "$secret",
            {"get": "not_found", "put": "reserved_key", "patch": "reserved_key", "delete": "not_found"},
        ),
    ],
)
def test_value__odd_paths__are_the_right_status(rw, make_namespace, put_layer, path, expected):
    make_namespace("payments")
    put_layer("payments", "default", {"a": {"b": 1}})
    statuses = {"invalid_path": 400, "reserved_key": 400, "not_found": 404}
    for method, want in expected.items():
        kwargs = {"data": {"value": 1}, "format": "json"} if method in ("put", "patch") else {}
        response = getattr(rw, method)(layer_url("payments") + "values/" + path, **kwargs)
        if isinstance(want, int):
            assert response.status_code == want, (method, response.content)
        else:
            assert_error(response, statuses[want], want)


# --- JSON Schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": []},
        {"$schema": {}},
        {"$schema": 5},
        {"$ref": "#/definitions/missing"},
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"$ref": "http://127.0.0.1:9/schema.json"},
    ],
)
def test_create_namespace__schema_that_cannot_be_applied__is_400_and_creates_nothing(rw, schema):
    body = {"name": "payments", "json_schema": schema}
    assert_error(rw.post("/api/v1/config/namespaces/", body, format="json"), 400, "invalid")
    assert not Namespace.objects.filter(name="payments").exists()


@pytest.mark.parametrize(
    "schema",
    [
        {"properties": {"a": {"$ref": "#/nope"}}},
        {"properties": {"a": {"$ref": "http://127.0.0.1:9/schema.json"}}},
    ],
)
def test_put_layer__schema_ref_that_cannot_resolve__is_400_and_writes_nothing(
    rw, make_namespace, monkeypatch, schema
):
    monkeypatch.setattr("urllib.request.urlopen", pytest.fail)  # the platform never fetches a $ref
    # A $ref only reached below the root is refused when the schema is set...
    made = rw.post("/api/v1/config/namespaces/", {"name": "payments", "json_schema": schema}, format="json")
    assert_error(made, 400, "invalid")
    # ...and a namespace that holds one from before (stored as is): a write is a 400, not a 500,
    # and nothing is written
    Namespace.objects.create(name="payments", json_schema=schema)
    response = rw.put(layer_url("payments"), {"data": {"a": "x"}}, format="json")
    assert_error(response, 400, "invalid")
    assert numbers("payments") == []


def test_patch_namespace__schema_ref_that_cannot_resolve__is_400_and_keeps_the_old_schema(
    rw, make_namespace, put_layer
):
    make_namespace("payments")
    put_layer("payments", "default", {"a": "x"})
    schema = {"properties": {"a": {"$ref": "#/nope"}}}
    assert_error(rw.patch(base("payments"), {"json_schema": schema}, format="json"), 400, "invalid")
    assert Namespace.objects.get(name="payments").json_schema is None


@pytest.mark.parametrize("pattern", ["\\Z", "a{99999999}"])
def test_create_namespace__a_pattern_the_validator_cannot_run__is_400_saying_so(rw, pattern):
    body = {"name": "payments", "json_schema": {"type": "string", "pattern": pattern}}
    error = assert_error(rw.post("/api/v1/config/namespaces/", body, format="json"), 400, "invalid")
    assert (
        "pattern" in error["message"] and "$ref" not in error["message"]
    )  # it said "a $ref it cannot resolve"
    assert not Namespace.objects.filter(name="payments").exists()


def test_put_layer__schema_ref_to_a_metaschema__resolves_locally(rw, make_namespace):
    make_namespace(
        "payments", json_schema={"properties": {"s": {"$ref": "http://json-schema.org/draft-07/schema#"}}}
    )
    assert (
        rw.put(layer_url("payments"), {"data": {"s": {"type": "string"}}}, format="json").status_code == 200
    )
    assert_error(
        rw.put(layer_url("payments"), {"data": {"s": {"type": 5}}}, format="json"), 400, "schema_violation"
    )


def test_put_layer__a_pattern_that_backtracks__is_answered_at_once(rw, make_namespace):
    # Python's re takes exponential time on ^(a+)+$ against "aaa...a!" (2.25 s at 26 characters,
    # about 2.4 times longer for each more), while the write holds the platform's config lock:
    # one namespace's schema could stall every config writer. The values are checked by
    # jsonschema-rs, whose regex engines do not backtrack without bound.
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
    make_namespace("payments", json_schema=schema)
    response = rw.put(layer_url("payments"), {"data": {"s": "a" * 40 + "!"}}, format="json")
    error = assert_error(response, 400, "schema_violation")
    assert list(error["details"]["failures"]["payments/default"]) == ["s"]
    assert rw.put(layer_url("payments"), {"data": {"s": "a" * 40}}, format="json").status_code == 200


@pytest.mark.parametrize(
    "schema", [{"type": "nonsense"}, {"pattern": "("}, {"$schema": "http://example.com/unknown"}]
)
def test_create_namespace__schema_that_is_not_valid_or_of_no_known_draft__is_400(rw, schema):
    response = rw.post(
        "/api/v1/config/namespaces/", {"name": "payments", "json_schema": schema}, format="json"
    )
    assert_error(response, 400, "invalid")
    assert not Namespace.objects.filter(name="payments").exists()


# --- secrets --------------------------------------------------------------------------------------


@pytest.fixture
def secret_ns(make_namespace, put_layer):
    make_namespace("payments", secret_paths=["api_keys", "servers/0"])
    put_layer("payments", "default", {"api_keys": {"x": "k1", "y": "k2"}, "servers": ["s3cret", "plain"]})


def test_secret__value_below_a_secret_path__reads_for_secret_holders_and_masked_for_others(
    rw, api_client, secret_ns
):
    admin = api_client("admin")
    for url in (layer_url("payments") + "values/api_keys/x", base("payments") + "resolve?path=api_keys/x"):
        shown, hidden = admin.get(url), rw.get(url)
        assert (shown.status_code, hidden.status_code) == (200, 200), (shown.content, hidden.content)
        key = "value" if "values/" in url else "data"
        assert (shown.json()[key], hidden.json()[key]) == ("k1", "***")
    assert_error(admin.get(layer_url("payments") + "values/api_keys/nope"), 404, "not_found")


def test_secret__envelope_key_as_a_path__does_not_hand_out_the_ciphertext(rw, api_client, secret_ns):
    value_url = layer_url("payments") + "values/api_keys/$secret"
    assert rw.get(value_url).json()["value"] == "***"
    assert rw.get(base("payments") + "resolve", {"path": "api_keys/$secret"}).json()["data"] == "***"
    assert_error(api_client("admin").get(value_url), 404, "not_found")


def test_secret__put_below_a_secret_path__keeps_the_other_secret_values(api_client, secret_ns):
    admin = api_client("admin")
    response = admin.put(layer_url("payments") + "values/api_keys/z", {"value": "k3"}, format="json")
    assert response.status_code == 200, response.content
    stored = Revision.objects.get(namespace__name="payments", number=2).data
    assert set(stored["api_keys"]) == {"$secret"}
    assert admin.get(layer_url("payments")).json()["data"]["api_keys"] == {"x": "k1", "y": "k2", "z": "k3"}


def test_secret__patch_merge_into_a_secret_object__keeps_the_other_secret_values(api_client, secret_ns):
    admin = api_client("admin")
    response = admin.patch(layer_url("payments") + "values/api_keys", {"value": {"w": "k4"}}, format="json")
    assert response.status_code == 200, response.content
    assert admin.get(layer_url("payments")).json()["data"]["api_keys"] == {"x": "k1", "y": "k2", "w": "k4"}


def test_secret__delete_below_a_secret_path__removes_the_value(api_client, secret_ns):
    admin = api_client("admin")
    response = admin.delete(layer_url("payments") + "values/api_keys/x")
    assert response.status_code == 200, response.content
    assert admin.get(layer_url("payments")).json()["data"]["api_keys"] == {"y": "k2"}
    assert set(Revision.objects.get(namespace__name="payments", number=2).data["api_keys"]) == {"$secret"}


def test_secret__path_to_a_list_item__is_encrypted_and_masked(rw, api_client, secret_ns):
    stored = Revision.objects.get(namespace__name="payments").data
    assert "s3cret" not in json.dumps(stored)
    assert rw.get(layer_url("payments") + "values/servers/0").json()["value"] == "***"
    assert rw.get(base("payments") + "resolve").json()["data"]["servers"] == ["***", "plain"]
    assert api_client("admin").get(layer_url("payments") + "values/servers/0").json()["value"] == "s3cret"


def test_secret__inside_a_list_in_a_diff__is_masked(rw, make_namespace, put_layer):
    make_namespace("payments", secret_paths=["servers/0/password"])
    put_layer("payments", "default", {"servers": [{"host": "a", "password": "hunter2"}]})
    put_layer("payments", "default", {"servers": [{"host": "b", "password": "hunter2"}]})
    body = rw.get(layer_url("payments") + "diff?from=0&to=2").json()
    assert "hunter2" not in json.dumps(body)
    assert body["added"] == [{"path": "servers", "value": [{"host": "b", "password": "***"}]}]


# --- websocket ------------------------------------------------------------------------------------


def ws_exchange(token: str, frames: list[dict]) -> list[dict]:
    """Send raw websocket frames, each followed by a ping; collect the answers."""

    async def run():
        communicator = WebsocketCommunicator(
            application, "/ws/config/", headers=[(b"authorization", f"Bearer {token}".encode())]
        )
        assert (await communicator.connect(timeout=5))[0]
        await communicator.receive_json_from(timeout=5)  # hello
        answers = []
        try:
            for frame in frames:
                await communicator.send_input({"type": "websocket.receive", **frame})
                answers.append(await communicator.receive_json_from(timeout=5))
                await communicator.send_json_to({"type": "ping"})
                answers.append(await communicator.receive_json_from(timeout=5))
        finally:
            await communicator.disconnect()
        return answers

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"text": json.dumps({"type": []})}, "invalid"),
        ({"text": json.dumps({"type": {"a": 1}})}, "invalid"),
        ({"text": json.dumps({"type": "subscribe", "namespace": ["a"]})}, "invalid"),
        ({"text": "not json"}, "parse_error"),
        ({"text": "[" * 5000}, "parse_error"),
        ({"bytes": b"\x00\x01"}, "parse_error"),
    ],
)
def test_ws__malformed_message__answers_an_error_and_keeps_the_connection(issue_token, frame, code):
    error, pong = ws_exchange(issue_token("config:read"), [frame])
    assert (error["type"], error["code"]) == ("error", code)
    assert pong == {"type": "pong"}


def deep_schema(levels: int) -> dict:
    schema: dict = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize("levels", [64, 150, 450])
def test_create_namespace__schema_nested_too_deeply__is_400_and_creates_nothing(rw, levels):
    body = {"name": "payments", "json_schema": deep_schema(levels)}
    error = assert_error(rw.post("/api/v1/config/namespaces/", body, format="json"), 400, "invalid")
    assert error["details"]["limit"] == 100
    assert not Namespace.objects.filter(name="payments").exists()


def test_put_layer__stored_schema_too_deep_for_the_validator__is_400_and_writes_nothing(rw, make_namespace):
    Namespace.objects.create(name="payments", json_schema=deep_schema(150))  # stored as is, from before
    response = rw.put(layer_url("payments"), {"data": {"a": 1}}, format="json")
    assert_error(response, 400, "invalid")
    assert numbers("payments") == []
