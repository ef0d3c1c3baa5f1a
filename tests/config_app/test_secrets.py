"""Secret paths: encrypted at rest, masked without config:secrets, never in events."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache

from config_app import selectors
from config_app.models import Revision
from event_app.models import Event
from tests.config_app.conftest import base

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret_ns(make_namespace, put_layer):
    make_namespace("payments", secret_paths=["db/password", "api_keys"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}, "api_keys": {"x": "k1"}})


def test_secret__is_encrypted_at_rest(secret_ns):
    data = Revision.objects.get().data
    stored = json.dumps(data)
    # (a short plaintext like "k1" can turn up inside random ciphertext: check the structure)
    assert "hunter2" not in stored and '"k1"' not in stored
    assert set(data["db"]["password"]) == {"$secret"} and set(data["api_keys"]) == {"$secret"}
    assert data["db"]["host"] == "h"


def test_secret__masked_for_callers_without_the_scope(rw, secret_ns):
    body = rw.get(base("payments") + "resolve").json()
    assert body["data"] == {"db": {"host": "h", "password": "***"}, "api_keys": "***"}
    layer = rw.get(base("payments") + "layers/default/").json()
    assert layer["data"]["db"]["password"] == "***"


def test_secret__shown_to_admin(api_client, secret_ns):
    body = api_client("admin").get(base("payments") + "resolve").json()
    assert body["data"] == {"db": {"host": "h", "password": "hunter2"}, "api_keys": {"x": "k1"}}
    sub = api_client("admin").get(base("payments") + "resolve", {"path": "db/password"}).json()
    assert sub["data"] == "hunter2"


@pytest.mark.parametrize("params", [{}, {"path": "db"}])
def test_secret__revealed_and_masked_answers_have_their_own_etag(rw, api_client, secret_ns, params):
    # both had the document's ETag, so a masked answer's validated the revealed one: 304 on it
    url, admin = base("payments") + "resolve", api_client("admin")
    masked, revealed = rw.get(url, params), admin.get(url, params)
    assert masked["ETag"] != revealed["ETag"]
    answer = admin.get(url, params, HTTP_IF_NONE_MATCH=masked["ETag"])
    assert answer.status_code == 200 and "hunter2" in answer.content.decode()
    assert admin.get(url, params, HTTP_IF_NONE_MATCH=revealed["ETag"]).status_code == 304
    assert rw.get(url, params, HTTP_IF_NONE_MATCH=revealed["ETag"]).status_code == 200
    assert rw.get(url, params, HTTP_IF_NONE_MATCH=masked["ETag"]).status_code == 304


def test_secret__a_long_poll_that_sees_no_change__304_with_the_etag_of_what_the_caller_sees(
    rw, api_client, secret_ns
):
    url, admin = base("payments") + "resolve", api_client("admin")
    poll = {"wait": "100ms", "revision": 1}
    assert admin.get(url, poll)["ETag"] == admin.get(url)["ETag"] != rw.get(url)["ETag"]
    assert rw.get(url, poll)["ETag"] == rw.get(url)["ETag"]


def test_secret__masked_put_back__keeps_the_stored_secret(rw, api_client, secret_ns):
    # Given a caller without secrets reads the masked layer and writes it back with a change
    layer = rw.get(base("payments") + "layers/default/").json()
    layer["data"]["db"]["host"] = "h2"
    rw.put(base("payments") + "layers/default/", {"data": layer["data"]}, format="json")
    # Then the secret is unchanged
    body = api_client("admin").get(base("payments") + "resolve").json()
    assert body["data"]["db"] == {"host": "h2", "password": "hunter2"}


def test_secret__the_mask_where_no_secret_is_stored__400_and_nothing_written(rw, secret_ns):
    # "***" means "keep the stored secret": in a layer that has none, it is no password
    url = base("payments") + "layers/staging/values/db/password"
    response = rw.put(url, {"value": "***"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "no_secret_to_keep")
    assert response.json()["error"]["details"] == {"path": "db/password"}
    assert not Revision.objects.filter(env="staging").exists()


def test_secret__a_path_made_secret_over_a_stored_mask__is_sealed_not_refused(rw, make_namespace, put_layer):
    make_namespace("billing")
    put_layer("billing", "default", {"token": "***"})  # not secret yet: a plain value
    response = rw.patch("/api/v1/config/namespaces/billing/", {"secret_paths": ["token"]}, format="json")
    assert response.status_code == 200, response.content


def test_secret__diff__is_masked(rw, put_layer, secret_ns):
    put_layer("payments", "default", {"db": {"host": "h", "password": "other"}, "api_keys": {"x": "k1"}})
    body = rw.get(base("payments") + "layers/default/diff").json()
    assert body["changed"] == [{"path": "db/password", "from": "***", "to": "***"}]


def test_secret__never_in_events(django_capture_on_commit_callbacks, make_namespace, put_layer):
    make_namespace("payments", secret_paths=["pw"])
    with django_capture_on_commit_callbacks(execute=True):
        put_layer("payments", "default", {"pw": "hunter2"})
    event = Event.objects.get(type="config.namespace.changed")
    assert event.data == {
        "namespace": "payments",
        "env": "default",
        "revision": 1,
        "author": "service:fixture",
    }
    assert "hunter2" not in json.dumps(event.data)


def test_secret_paths__added_later__encrypt_existing_values(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"token": "t0k"})
    response = rw.patch(base("payments"), {"secret_paths": ["token"]}, format="json")
    assert response.status_code == 200
    head = Revision.objects.order_by("-number").first()
    assert head.number == 2 and "t0k" not in json.dumps(head.data)
    assert rw.get(base("payments") + "resolve").json()["data"] == {"token": "***"}


def test_secret_path_widened__one_envelope_for_the_subtree(rw, api_client, make_namespace, put_layer):
    # given a secret password, when its whole parent becomes the secret path
    make_namespace("payments", secret_paths=["db/password"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    assert rw.patch(base("payments"), {"secret_paths": ["db"]}, format="json").status_code == 200
    # then the subtree is one envelope of plain values (not an envelope inside one)
    stored = Revision.objects.order_by("-number").first().data
    assert set(stored) == {"db"} and set(stored["db"]) == {"$secret"}
    admin = api_client("admin")
    assert admin.get(base("payments") + "resolve").json()["data"] == {
        "db": {"host": "h", "password": "hunter2"}
    }
    assert admin.get(base("payments") + "layers/default/values/db/password").json()["value"] == "hunter2"
    assert rw.get(base("payments") + "resolve").json()["data"] == {"db": "***"}


@pytest.mark.parametrize("paths", [[], ["db/host"]])
def test_secret_path_dropped__its_value_is_plain_again(rw, api_client, make_namespace, put_layer, paths):
    # given a secret password, when a holder of config:secrets makes the path no longer cover it
    make_namespace("payments", secret_paths=["db/password"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    secrets = api_client("config:read", "config:write", "config:secrets")
    assert secrets.patch(base("payments"), {"secret_paths": paths}, format="json").status_code == 200
    # then every caller reads it, and a round trip by a caller without config:secrets keeps it
    layer = rw.get(base("payments") + "layers/default/").json()
    assert layer["data"]["db"]["password"] == "hunter2"
    rw.put(base("payments") + "layers/default/", {"data": layer["data"]}, format="json")
    resolved = api_client("admin").get(base("payments") + "resolve").json()["data"]
    assert resolved["db"]["password"] == "hunter2"
    stored = json.dumps(Revision.objects.order_by("-number").first().data)
    assert ("hunter2" in stored) is True and ('"h"' in stored) is (paths == [])


def test_secrets_scope__token_holding_it__sees_secrets():
    from types import SimpleNamespace

    from auth_app.tokens import TokenInfo
    from config_app.api.views import can_see_secrets

    def token(*scopes):
        info = TokenInfo(1, "c", 1, "svc", None, "", frozenset(scopes), 0.0)
        return SimpleNamespace(auth=info)

    assert can_see_secrets(token("config:read", "config:secrets"))
    assert can_see_secrets(token("admin"))
    assert not can_see_secrets(token("config:read", "config:write"))


def test_schema_violation_under_a_secret_path__does_not_quote_the_value(rw, make_namespace):
    schema = {"type": "object", "properties": {"pw": {"type": "integer"}}}
    make_namespace("payments", secret_paths=["pw"], json_schema=schema)
    response = rw.put(base("payments") + "layers/default/", {"data": {"pw": "hunter2"}}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["paths"] == ["pw"]
    assert "hunter2" not in response.content.decode()


def test_secret_subtree_set_by_two_layers__merges_key_by_key(rw, api_client, make_namespace, put_layer):
    # given a secret subtree whose password is in the defaults and whose host production overrides
    make_namespace("payments", secret_paths=["db"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    put_layer("payments", "production", {"db": {"host": "prod"}})
    # then production resolves to both, as any other object merges
    url = base("payments") + "resolve"
    admin = api_client("admin")
    assert admin.get(url, {"env": "production"}).json()["data"] == {
        "db": {"host": "prod", "password": "hunter2"}
    }
    assert admin.get(url, {"env": "production", "path": "db/password"}).json()["data"] == "hunter2"
    assert rw.get(url, {"env": "production"}).json()["data"] == {"db": "***"}
    # and the resolution is the same each time it is built (its ETag too)
    etag = rw.get(url, {"env": "production"})["ETag"]
    cache.clear()
    selectors.forget_local()
    assert rw.get(url, {"env": "production"})["ETag"] == etag


def test_secret_under_a_plain_global_value__merges_and_is_secret_whole(
    rw, api_client, make_namespace, put_layer
):
    # given global's plain cache settings and a namespace marking cache secret
    put_layer("global", "default", {"cache": {"host": "ghost"}})
    make_namespace("payments", secret_paths=["cache"])
    put_layer("payments", "default", {"cache": {"password": "pw"}})
    url = base("payments") + "resolve"
    # then the merge holds both, shown to secrets holders and masked whole for the others
    assert api_client("admin").get(url).json()["data"] == {"cache": {"host": "ghost", "password": "pw"}}
    assert rw.get(url).json()["data"] == {"cache": "***"}


def test_secret_removed_by_a_later_layer__is_gone(api_client, make_namespace, put_layer):
    make_namespace("payments", secret_paths=["db/password"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    put_layer("payments", "production", {"db": {"password": None}})
    body = api_client("admin").get(base("payments") + "resolve", {"env": "production"}).json()
    assert body["data"] == {"db": {"host": "h"}}


def test_secret_set_by_one_layer__its_nulls_are_not_in_the_resolution(api_client, make_namespace, put_layer):
    make_namespace(
        "payments",
        secret_paths=["db"],
        json_schema={"properties": {"db": {"properties": {"port": {"type": "integer"}}}}},
    )
    put_layer("payments", "default", {"db": {"host": "h", "port": None}})  # a null deletes, as anywhere
    admin = api_client("admin")
    assert admin.get(base("payments") + "resolve").json()["data"] == {"db": {"host": "h"}}
    assert admin.get(base("payments") + "resolve", {"path": "db/port"}).status_code == 404
    assert admin.get(base("payments") + "layers/default/").json()["data"] == {
        "db": {"host": "h", "port": None}
    }


@pytest.mark.parametrize("paths", [[], ["db/host"], ["db/password/x"]])
def test_secret_path_uncovered_without_the_secrets_scope__is_403(
    rw, api_client, make_namespace, put_layer, paths
):
    # given a secret only holders of config:secrets read
    make_namespace("payments", secret_paths=["db/password"])
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    # when a writer without it takes the path out of secret_paths, it is refused
    response = rw.patch(base("payments"), {"secret_paths": paths}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert response.json()["error"]["details"] == {"secret_paths": ["db/password"]}
    assert "hunter2" not in rw.get(base("payments") + "layers/default/").content.decode()
    # while widening a secret, or adding one, is anyone's with config:write
    assert rw.patch(base("payments"), {"secret_paths": ["db", "more"]}, format="json").status_code == 200


def test_secret__merge_patch_on_a_parent__edits_the_secret_inside(api_client, make_namespace, put_layer):
    make_namespace("payments", secret_paths=["a/b"])
    put_layer("payments", "default", {"a": {"b": {"k": "v"}}})
    admin = api_client("admin")
    admin.patch(base("payments") + "layers/default/values/a", {"value": {"b": {"x": 1}}}, format="json")
    assert admin.get(base("payments") + "layers/default/").json()["data"] == {"a": {"b": {"k": "v", "x": 1}}}
    assert set(Revision.objects.order_by("-number").first().data["a"]["b"]) == {"$secret"}


@pytest.mark.parametrize("path", ["db//", "db/", "/db", "db//password", "db/./pw", "db/..", " db", "/", ""])
def test_secret_paths__not_as_written__is_400_naming_it_and_unchanged(rw, make_namespace, put_layer, path):
    # given a namespace with a secret and a stored layer
    make_namespace("payments", secret_paths=["pw"])
    put_layer("payments", "default", {"db": {"password": "hunter2"}, "pw": "x"})
    # when a secret path with an empty segment (or . or ..) comes in, on create or on update
    body = {"name": "billing", "secret_paths": [path]}
    created = rw.post("/api/v1/config/namespaces/", body, format="json")
    updated = rw.patch(base("payments"), {"secret_paths": ["pw", path]}, format="json")
    # then both are a 400 naming the path, never the path normalised (db// read as db)
    for response in (created, updated):
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert set(error) == {"code", "message", "details"}
        if path:  # "" is refused by the field itself (blank)
            assert (error["code"], error["details"]) == ("invalid_path", {"path": path}), error
    assert rw.get(base("billing")).status_code == 404
    assert rw.get(base("payments")).json()["secret_paths"] == ["pw"]
    assert list(Revision.objects.values_list("number", flat=True)) == [1]


def test_secret__the_mask_written_below_a_secret_path__keeps_the_stored_value_there(
    rw, api_client, secret_ns
):
    # a "***" below the path was stored as the value: the key, read as "***" by a caller without
    # secrets and written back so, was lost
    layer = base("payments") + "layers/default/"
    assert rw.put(layer + "values/api_keys/x", {"value": "***"}, format="json").status_code == 200
    patched = rw.patch(layer + "values/api_keys", {"value": {"x": "***", "y": "k2"}}, format="json")
    assert patched.status_code == 200, patched.content
    admin = api_client("admin")
    assert admin.get(layer).json()["data"]["api_keys"] == {"x": "k1", "y": "k2"}
    # where nothing is stored at that place, "***" is no value: refused, nothing written
    before = Revision.objects.count()
    for url, body in (
        (layer + "values/api_keys/new", {"value": "***"}),
        (base("payments") + "layers/staging/", {"data": {"api_keys": {"k": "***"}}}),
    ):
        response = rw.put(url, body, format="json")
        assert (response.status_code, response.json()["error"]["code"]) == (400, "no_secret_to_keep"), url
    assert Revision.objects.count() == before
    assert admin.get(layer).json()["data"]["api_keys"] == {"x": "k1", "y": "k2"}
