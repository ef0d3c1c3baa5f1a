"""Writes: whole layers, single paths, optimistic concurrency, validation, size, bad input."""

from __future__ import annotations

import json

import pytest

from config_app.models import Revision
from platformsite.api.validators import SLUG
from tests.config_app.conftest import base

pytestmark = pytest.mark.django_db


def layer_url(ns: str, env: str) -> str:
    return base(ns) + f"layers/{env}/"


def revisions(ns: str, env: str) -> list[int]:
    return list(
        Revision.objects.filter(namespace__name=ns, env=env)
        .order_by("number")
        .values_list("number", flat=True)
    )


def test_put_layer__new__creates_revision_1_with_author_and_checksum(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "default"), {"data": {"a": 1}, "comment": "first"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["revision"], body["comment"], body["data"]) == (1, "first", {"a": 1})
    assert body["author"].startswith("service:svc-")
    assert len(body["checksum"]) == 64
    assert response["ETag"] == '"1"'


def test_put_layer__twice__keeps_both_revisions(rw, make_namespace):
    make_namespace("payments")
    rw.put(layer_url("payments", "default"), {"data": {"a": 1}}, format="json")
    rw.put(layer_url("payments", "default"), {"data": {"a": 2}}, format="json")
    assert revisions("payments", "default") == [1, 2]
    first = Revision.objects.get(namespace__name="payments", env="default", number=1)
    assert first.data == {"a": 1}


def test_put_layer__stale_expected_revision__is_409_and_changes_nothing(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    put_layer("payments", "default", {"a": 2})
    response = rw.put(
        layer_url("payments", "default"), {"data": {"a": 3}, "expected_revision": 1}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stale_revision"
    assert response.json()["error"]["details"]["current"] == 2
    assert revisions("payments", "default") == [1, 2]


def test_put_layer__stale_if_match__is_409(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default"), {"data": {}}, format="json", HTTP_IF_MATCH='"0"')
    assert response.status_code == 409
    assert revisions("payments", "default") == [1]


def test_put_layer__current_if_match__is_accepted(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default"), {"data": {}}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200
    assert revisions("payments", "default") == [1, 2]


def test_put_layer__if_match_and_expected_revision__both_hold(rw, make_namespace, put_layer):
    # the header was ignored when the body named a revision: a stale If-Match wrote anyway
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    url = layer_url("payments", "default")
    response = rw.put(url, {"data": {}, "expected_revision": 1}, format="json", HTTP_IF_MATCH='"0"')
    assert (response.status_code, response.json()["error"]["code"]) == (400, "conflicting_preconditions")
    assert revisions("payments", "default") == [1]
    response = rw.put(url, {"data": {}, "expected_revision": 1}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200 and revisions("payments", "default") == [1, 2]


def test_put_layer__bad_if_match__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "default"), {"data": {}}, format="json", HTTP_IF_MATCH="abc")
    assert response.status_code == 400
    assert revisions("payments", "default") == []


def test_put_layer__invalid_json__is_400_and_changes_nothing(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default"), '{"data": {', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert revisions("payments", "default") == [1]


def test_put_layer__data_not_an_object__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "default"), {"data": [1, 2]}, format="json")
    assert response.status_code == 400
    assert revisions("payments", "default") == []


def test_put_layer__reserved_secret_key__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "default"), {"data": {"x": {"$secret": "y"}}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "reserved_key"


def test_put_layer__unknown_namespace__is_404(rw):
    response = rw.put(layer_url("nowhere", "default"), {"data": {}}, format="json")
    assert response.status_code == 404
    assert not Revision.objects.exists()


def test_put_layer__invalid_env__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "Bad!"), {"data": {}}, format="json")
    assert response.status_code == 400
    assert not Revision.objects.exists()


def test_put_layer__oversized__is_413_and_changes_nothing(rw, make_namespace, put_layer, settings):
    settings.CONFIG_MAX_LAYER_BYTES = 100
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default"), {"data": {"blob": "x" * 200}}, format="json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "layer_too_large"
    assert revisions("payments", "default") == [1]


def test_put_layer__read_scope_only__is_403(api_client, make_namespace):
    make_namespace("payments")
    reader = api_client("config:read")
    response = reader.put(layer_url("payments", "default"), {"data": {}}, format="json")
    assert response.status_code == 403
    assert not Revision.objects.exists()


def test_put_layer__global__creates_the_global_namespace(rw):
    response = rw.put(layer_url("global", "default"), {"data": {"tz": "UTC"}}, format="json")
    assert response.status_code == 200
    assert rw.get(base("global") + "resolve").json()["data"] == {"tz": "UTC"}


SCHEMA = {
    "type": "object",
    "properties": {"db": {"type": "object", "properties": {"port": {"type": "integer"}}}},
    "required": ["db"],
}


def test_put_layer__schema_violation__is_400_naming_paths(rw, make_namespace, put_layer):
    make_namespace("payments", json_schema=SCHEMA)
    put_layer("payments", "default", {"db": {"port": 5432}})
    response = rw.put(layer_url("payments", "production"), {"data": {"db": {"port": "high"}}}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "schema_violation"
    assert error["details"]["paths"] == ["db/port"]
    assert "payments/production" in error["details"]["failures"]
    assert revisions("payments", "production") == []


def test_put_global__breaking_a_namespace_schema__is_400(rw, make_namespace, put_layer):
    # Given payments requires db.port to be an integer and gets db from global
    make_namespace("payments", json_schema=SCHEMA)
    put_layer("global", "default", {"db": {"port": 1}})
    # When global sets db.port to a string
    response = rw.put(layer_url("global", "default"), {"data": {"db": {"port": "x"}}}, format="json")
    # Then it is refused: the payments resolution would break
    assert response.status_code == 400
    assert "payments/default" in response.json()["error"]["details"]["failures"]
    assert revisions("global", "default") == [1]


def test_default_layer_write__validates_every_env(rw, make_namespace, put_layer):
    make_namespace("payments", json_schema=SCHEMA)
    put_layer("payments", "default", {"db": {"port": 1}})
    put_layer("payments", "staging", {"x": 1})
    # deleting db from default would break staging (and default)
    response = rw.put(layer_url("payments", "default"), {"data": {}}, format="json")
    assert response.status_code == 400
    failures = response.json()["error"]["details"]["failures"]
    assert {"payments/default", "payments/staging"} <= failures.keys()


def test_value_put__sets_one_path(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "a", "port": 1}})
    response = rw.put(layer_url("payments", "default") + "values/db/host", {"value": "b"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == {"db": {"host": "b", "port": 1}}
    assert revisions("payments", "default") == [1, 2]


def test_value_put__new_layer_and_nested_path__creates_objects(rw, make_namespace):
    make_namespace("payments")
    response = rw.put(layer_url("payments", "dev") + "values/a/b/c", {"value": [1]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] == {"a": {"b": {"c": [1]}}}


def test_value_put__through_a_scalar__is_400(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default") + "values/a/b", {"value": 2}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "path_conflict"
    assert response.json()["error"]["message"] == "a holds a number, not an object."  # JSON's words
    assert revisions("payments", "default") == [1]


def test_value_patch__merges_objects(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "a", "port": 1}})
    response = rw.patch(
        layer_url("payments", "default") + "values/db", {"value": {"port": 2, "host": None}}, format="json"
    )
    assert response.json()["data"] == {"db": {"port": 2}}


def test_value_delete__removes_the_path(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "a", "port": 1}})
    response = rw.delete(layer_url("payments", "default") + "values/db/host")
    assert response.status_code == 200
    assert response.json()["data"] == {"db": {"port": 1}}


def test_value_delete__missing_path__is_404_and_changes_nothing(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.delete(layer_url("payments", "default") + "values/b")
    assert response.status_code == 404
    assert revisions("payments", "default") == [1]


def test_value_delete__list_item__is_400_and_writes_no_revision(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"servers": ["a", "b"]})
    response = rw.delete(layer_url("payments", "default") + "values/servers/0")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "path_conflict"
    assert revisions("payments", "default") == [1]


@pytest.mark.parametrize("path", ["db//", "db/", "/db", "db//host", "db/./host", "db/host/.."])
def test_value_write__path_not_as_written__is_400_and_changes_nothing(rw, make_namespace, put_layer, path):
    # given a layer holding db
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "h"}})
    url = layer_url("payments", "default") + "values/" + path.replace(".", "%2E") + "/"  # as the CLI sends it
    # when a path with an empty segment (or . or ..) is written, merged or deleted
    for response in (
        rw.put(url, {"value": 1}, format="json"),
        rw.patch(url, {"value": {"port": 1}}, format="json"),
        rw.delete(url),
    ):
        # then it is a 400 naming the path as sent, never a write to the path normalised (db)
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "invalid_path"
        assert response.json()["error"]["details"] == {"path": path}
    assert revisions("payments", "default") == [1]
    assert rw.get(layer_url("payments", "default")).json()["data"] == {"db": {"host": "h"}}


def test_value_put__unparsable_path__is_400_and_changes_nothing(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    response = rw.put(layer_url("payments", "default") + "values/a//b", {"value": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_path"
    response = rw.put(layer_url("payments", "default") + "values/a%20b", {"value": 1}, format="json")
    assert response.status_code == 400
    assert revisions("payments", "default") == [1]


def test_value_get__returns_the_layer_value(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "a"}})
    body = rw.get(layer_url("payments", "default") + "values/db/host").json()
    assert (body["value"], body["revision"]) == ("a", 1)


def test_layer_get__unknown__is_404(rw, make_namespace):
    make_namespace("payments")
    assert rw.get(layer_url("payments", "default")).status_code == 404


def test_namespace_create_list_and_update(rw):
    response = rw.post(
        "/api/v1/config/namespaces/",
        {"name": "orders", "description": "d", "secret_paths": ["db/pw"]},
        format="json",
    )
    assert response.status_code == 201
    taken = rw.post("/api/v1/config/namespaces/", {"name": "orders"}, format="json")
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "namespace_exists")
    names = [n["name"] for n in rw.get("/api/v1/config/namespaces/").json()["results"]]
    assert "orders" in names
    response = rw.patch(base("orders"), {"json_schema": {"type": "object"}}, format="json")
    assert response.status_code == 200
    assert response.json()["json_schema"] == {"type": "object"}


def test_namespace_create__bad_name_and_bad_schema__are_400(rw):
    bad_name = rw.post("/api/v1/config/namespaces/", {"name": "Bad Name"}, format="json")
    assert bad_name.status_code == 400
    assert bad_name.json()["error"]["details"]["name"] == [f"A namespace name is {SLUG.hint}."]
    response = rw.post(
        "/api/v1/config/namespaces/", {"name": "ok", "json_schema": {"type": "nonsense"}}, format="json"
    )
    assert response.status_code == 400
    assert json.dumps(response.json()).count("json_schema")


def test_namespace_update__schema_the_current_config_breaks__is_400(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"port": "x"}})
    response = rw.patch(base("payments"), {"json_schema": SCHEMA}, format="json")
    assert response.status_code == 400
    assert rw.get(base("payments")).json()["json_schema"] is None


def test_put_layer__namespace_not_in_policy__is_403_and_changes_nothing(
    api_client, make_namespace, put_layer
):
    # Given a writer whose role allows writing config:payments/* only
    from auth_app.models import Account
    from auth_app.services import binding_create, role_create, rule_create

    make_namespace("payments")
    make_namespace("billing")
    put_layer("billing", "default", {"a": 1})
    writer = api_client("config:read", "config:write")
    role = role_create(name="payments-writers")
    rule_create(role=role, resource="config:payments/*", action="*", effect="allow", priority=0)
    binding_create(role=role, account=Account.objects.order_by("-id").first())

    # When it writes to both namespaces
    allowed = writer.put(layer_url("payments", "default"), {"data": {"b": 1}}, format="json")
    denied = writer.put(layer_url("billing", "default"), {"data": {"a": 2}}, format="json")
    denied_path = writer.delete(layer_url("billing", "default") + "values/a")

    # Then only payments changed
    assert allowed.status_code == 200
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "policy_denied")
    assert denied_path.status_code == 403
    assert revisions("billing", "default") == [1]


def test_writes__caller_without_config_read__answer_without_the_data(api_client, make_namespace, put_layer):
    # write does not imply read: no write (a merge of nothing, a rollback) hands out the layer
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"password": "plain"}})
    writer = api_client("config:write")
    layer = "/api/v1/config/namespaces/payments/layers/default/"
    answers = [
        writer.patch(layer + "values/x", {"value": {}}, format="json"),
        writer.put(layer + "values/y", {"value": 1}, format="json"),
        writer.post(layer + "rollback", {"revision": 1}, format="json"),
        writer.put(layer, {"data": {"z": 1}}, format="json"),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200]
    assert ["data" in answer.json() for answer in answers] == [False] * 4
    assert writer.get(layer).status_code == 403
