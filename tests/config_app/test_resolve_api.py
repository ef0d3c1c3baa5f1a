"""Resolution: deep merge of the four layers, sub-paths, ETag, cache, policy."""

from __future__ import annotations

import pytest

from auth_app.models import Account
from auth_app.services import binding_create, role_create, rule_create
from config_app import selectors, services
from platformsite import invalidation
from tests.config_app.conftest import base
from tests.platformsite.test_invalidation import wait_for

pytestmark = pytest.mark.django_db


def test_resolve__four_layers__later_wins_and_null_deletes(rw, make_namespace, put_layer):
    # Given global and namespace layers for default and production
    make_namespace("payments")
    put_layer("global", "default", {"log": {"level": "info", "json": True}, "region": "eu", "tz": "UTC"})
    put_layer("global", "production", {"log": {"level": "warn"}})
    put_layer("payments", "default", {"db": {"host": "localhost", "port": 5432}, "tz": None})
    put_layer("payments", "production", {"db": {"host": "db.prod"}, "region": "us"})

    # When the production config is resolved
    response = rw.get(base("payments") + "resolve", {"env": "production"})

    # Then it is the deep merge, nulls deleting keys, with the revisions it was built from
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {
        "log": {"level": "warn", "json": True},
        "region": "us",
        "db": {"host": "db.prod", "port": 5432},
    }
    assert body["revisions"] == {
        "global/default": 1,
        "global/production": 1,
        "payments/default": 1,
        "payments/production": 1,
    }
    assert body["revision"] == 4
    assert response["ETag"] == body["etag"]


def test_resolve__unknown_env__gets_the_defaults(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    body = rw.get(base("payments") + "resolve", {"env": "qa"}).json()
    assert body["data"] == {"a": 1}


def test_resolve__path__returns_the_sub_value(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "h", "ports": [1, 2]}})
    assert rw.get(base("payments") + "resolve", {"path": "db/host"}).json()["data"] == "h"
    assert rw.get(base("payments") + "resolve", {"path": "db/ports/1"}).json()["data"] == 2


def test_resolve__missing_path__is_404(rw, make_namespace):
    make_namespace("payments")
    response = rw.get(base("payments") + "resolve", {"path": "db/nope"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_resolve__unparsable_path__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.get(base("payments") + "resolve", {"path": "db//host"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_path"


def test_resolve__invalid_env__is_400(rw, make_namespace):
    make_namespace("payments")
    response = rw.get(base("payments") + "resolve", {"env": "Prod uction"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_env"


def test_resolve__unknown_namespace__is_404(rw):
    response = rw.get(base("nowhere") + "resolve")
    assert response.status_code == 404


def test_resolve__warm__runs_no_query(rw, make_namespace, put_layer, django_assert_num_queries):
    # Given a resolved document read once (cache, token and policy warm)
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    rw.get(base("payments") + "resolve")

    # When it is read again
    with django_assert_num_queries(0):
        response = rw.get(base("payments") + "resolve")

    # Then it came from the cache
    assert response.status_code == 200
    assert response.json()["data"] == {"a": 1}


def test_resolve__after_write__is_invalidated(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert rw.get(base("payments") + "resolve").json()["data"] == {"a": 1}
    put_layer("global", "default", {"b": 2})
    put_layer("payments", "default", {"a": 3})
    assert rw.get(base("payments") + "resolve").json()["data"] == {"a": 3, "b": 2}


def test_resolve__if_none_match__is_304(rw, make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    etag = rw.get(base("payments") + "resolve")["ETag"]
    assert rw.get(base("payments") + "resolve", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.parametrize("header", ["W/{etag}", '"1-abc", {etag}', 'W/"x",W/{etag}'])
def test_resolve__if_none_match_weak_or_listed__is_304(rw, make_namespace, put_layer, header):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    etag = rw.get(base("payments") + "resolve")["ETag"]
    response = rw.get(base("payments") + "resolve", HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert (response.status_code, response["ETag"]) == (304, etag)


def test_resolve__if_none_match_star__is_304_when_it_exists_404_when_not(rw, make_namespace, put_layer):
    # RFC 9110 13.1.2: * matches any current representation, so a GET's condition is false
    make_namespace("payments")
    etag = rw.get(base("payments") + "resolve")["ETag"]  # no layer yet: an empty document, still there
    response = rw.get(base("payments") + "resolve", HTTP_IF_NONE_MATCH="*")
    assert (response.status_code, response["ETag"]) == (304, etag)
    put_layer("payments", "default", {"a": 1})
    response = rw.get(base("payments") + "resolve?env=production", HTTP_IF_NONE_MATCH="*")
    assert response.status_code == 304
    assert rw.get(base("nowhere") + "resolve", HTTP_IF_NONE_MATCH="*").status_code == 404


def test_resolve__path__if_none_match__304_until_the_document_changes(rw, make_namespace, put_layer):
    # Given a ?path= answer, which carries the document's revision, revisions and etag
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "h", "port": 1}})
    url = base("payments") + "resolve?path=db/host"
    first = rw.get(url)
    etag = first["ETag"]
    assert etag == first.json()["etag"] == rw.get(base("payments") + "resolve")["ETag"]

    # Then its ETag (plain, weak, listed or *) answers 304 with the ETag and no body
    for header in (etag, f"W/{etag}", f'"0-x", {etag}', "*"):
        response = rw.get(url, HTTP_IF_NONE_MATCH=header)
        assert (response.status_code, response["ETag"], response.content) == (304, etag, b"")
    assert rw.get(url, HTTP_IF_NONE_MATCH='"0-x"').status_code == 200

    # And a path that is not there, or does not parse, is still 404 or 400
    assert rw.get(base("payments") + "resolve?path=db/nope", HTTP_IF_NONE_MATCH="*").status_code == 404
    assert rw.get(base("payments") + "resolve?path=db/nope", HTTP_IF_NONE_MATCH=etag).status_code == 404
    assert rw.get(base("payments") + "resolve?path=db/", HTTP_IF_NONE_MATCH=etag).status_code == 400

    # When anything in the document changes (even beside the path), the old ETag no longer matches
    put_layer("payments", "default", {"db": {"host": "h", "port": 2}})
    response = rw.get(url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200 and response["ETag"] != etag
    assert response.json()["etag"] == response["ETag"] and response.json()["data"] == "h"


def test_resolve__without_token__is_401(client, make_namespace):
    make_namespace("payments")
    assert client.get(base("payments") + "resolve").status_code == 401


def test_resolve__other_service_scope__is_403(outsider, make_namespace):
    make_namespace("payments")
    assert outsider.get(base("payments") + "resolve").status_code == 403


def test_resolve__namespace_not_in_policy__is_403(api_client, make_namespace, put_layer):
    # Given an account whose role allows only config:payments/*
    make_namespace("payments")
    make_namespace("billing")
    put_layer("billing", "default", {"secret": 1})
    client = api_client("config:read")
    account = Account.objects.order_by("-id").first()
    role = role_create(name="payments-readers", description="")
    rule_create(role=role, resource="config:payments/*", action="read", effect="allow", priority=0)
    binding_create(role=role, account=account)

    # When it reads both namespaces
    allowed = client.get(base("payments") + "resolve", {"env": "production"})
    denied = client.get(base("billing") + "resolve")

    # Then only payments is served
    assert allowed.status_code == 200
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "policy_denied"


def test_resolve__cache_entry__survives_pickling(make_namespace, put_layer):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    first = selectors.resolve("payments", "default")
    assert selectors.resolve("payments", "default") == first


def _other_node_writes(namespace: str, data: dict) -> None:
    """A write made on another node: rows and shared generation change, this process is not told."""
    from config_app.models import Layer

    saved = dict(selectors._local)
    services.layer_set(namespace=namespace, env="default", data=data, author="service:other-node")
    selectors._local.update(saved)  # what the other node's bump could not have cleared here
    assert Layer.objects.filter(namespace__name=namespace).exists()


@pytest.fixture
def deaf(monkeypatch):
    """This process cannot hear invalidation announcements (its subscription is down)."""
    monkeypatch.setattr(invalidation, "listening", lambda: False)


def test_resolve__other_node_write_unheard__seen_by_the_next_read(make_namespace, put_layer, deaf):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert selectors.resolve("payments", "default").data == {"a": 1}
    _other_node_writes("payments", {"a": 2})
    assert selectors.resolve("payments", "default").data == {"a": 2}


def test_resolve__listening__copy_used_until_an_announcement_drops_it(make_namespace, put_layer):
    assert wait_for(invalidation.listening)
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert selectors.resolve("payments", "default").data == {"a": 1}
    _other_node_writes("payments", {"a": 2})
    # the copy is trusted (no shared-cache read would reveal the write)...
    assert selectors.resolve("payments", "default").data == {"a": 1}
    # ...until the other node's announcement arrives, as the listener thread delivers it
    invalidation._bus.deliver(selectors.TOPIC, "payments")
    assert selectors.resolve("payments", "default").data == {"a": 2}


def test_resolve__announcement_during_a_read__the_copy_is_not_kept(make_namespace, put_layer, monkeypatch):
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    real_get_many = selectors.cache.get_many

    def get_many_then_hear_a_write(keys):
        found = real_get_many(keys)
        invalidation._bus.deliver(selectors.TOPIC, "payments")  # arrives after the read
        return found

    monkeypatch.setattr(selectors.cache, "get_many", get_many_then_hear_a_write)
    selectors.resolve("payments", "default")
    assert ("payments", "default") not in selectors._local


def test_resolve__local_cache_seconds__trusts_its_copy_that_long(make_namespace, put_layer, settings, deaf):
    settings.CONFIG_LOCAL_CACHE_SECONDS = 60
    make_namespace("payments")
    put_layer("payments", "default", {"a": 1})
    assert selectors.resolve("payments", "default").data == {"a": 1}
    _other_node_writes("payments", {"a": 2})
    assert selectors.resolve("payments", "default").data == {"a": 1}
    assert selectors.resolve("payments", "default", fresh=True).data == {"a": 2}
    put_layer("payments", "default", {"a": 3})  # a write on this node is seen at once
    assert selectors.resolve("payments", "default").data == {"a": 3}


class _CacheDown:
    """The shared cache while Redis restarts: every call is refused."""

    def __getattr__(self, name):
        def refused(*args, **kwargs):
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

        return refused


def test_resolve__shared_cache_down__read_from_the_database_and_no_copy_kept(
    rw, make_namespace, put_layer, monkeypatch
):
    # Redis restarting under load (tests/faults): every config read was a 503
    make_namespace("payments")
    put_layer("payments", "default", {"db": {"host": "h1"}})
    monkeypatch.setattr(selectors, "cache", _CacheDown())
    selectors.forget_local()

    response = rw.get(base("payments") + "resolve")

    assert response.status_code == 200
    assert response.json()["data"] == {"db": {"host": "h1"}}
    assert response.json()["revision"] == 1
    # no copy kept: no write could be announced or checked against while the cache is down
    assert selectors._local == {}
