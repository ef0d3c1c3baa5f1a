"""The service kit: what every service's API gets from ``ServiceView`` (regressions of a review)."""

from __future__ import annotations

import json

import pytest

from auth_app.models import Account
from config_app import services as config
from event_app.models import Subscription
from event_app.services import subscription_create

ACCOUNT = "/api/v1/auth/accounts/{}/"


@pytest.fixture
def make_namespace(db):
    return lambda name: config.namespace_create(name=name)


@pytest.fixture
def put_layer(db):
    return lambda ns, env, data: config.layer_set(namespace=ns, env=env, data=data, author="service:t")


@pytest.mark.parametrize("action", ["disable/", "enable/", "rotate-secret/"])
@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_account_action__other_method__is_405_and_the_account_is_untouched(
    api_client, service_account, action, method
):
    # Given an account and a caller holding every auth scope
    service_account("config:read", name="orders")
    admin = api_client("admin")

    # When it calls an action URL with a method the action does not answer
    response = getattr(admin, method)(ACCOUNT.format("orders") + action, {}, format="json")

    # Then the answer is 405 in the error shape, and the account is as it was
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    account = Account.objects.get(name="orders")
    assert account.is_active and account.scope_list == ["config:read"]


def test_subscription_deliveries__delete__is_405_and_the_subscription_stays(api_client, db):
    subscription_create(name="audit", types=["order.*"], url="https://hooks.example.com/x", owner="t")
    operator = api_client("events:read", "events:write")

    response = operator.delete("/api/v1/events/subscriptions/audit/deliveries/")

    assert response.status_code == 405
    assert Subscription.objects.filter(name="audit").exists()


def test_schema__actions_list_only_their_own_method(client, db):
    paths = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/json").content)["paths"]
    for path, methods in [
        ("/api/v1/auth/accounts/{name}/disable/", {"post"}),
        ("/api/v1/auth/accounts/{name}/enable/", {"post"}),
        ("/api/v1/auth/accounts/{name}/rotate-secret/", {"post"}),
        ("/api/v1/events/subscriptions/{name}/deliveries/", {"get"}),
        ("/api/v1/events/subscriptions/{name}/redeliver/", {"post"}),
    ]:
        assert set(paths[path]) - {"parameters"} == methods, path


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/config/namespaces/shop/resolve?env=dev%0A"),
        ("put", "/api/v1/config/namespaces/shop/layers/dev%0A/"),
        ("get", "/api/v1/config/namespaces/shop/layers/dev%0A/revisions/"),
        ("put", "/api/v1/config/namespaces/shop/layers/dev%0A/values/a"),
    ],
)
def test_config__env_with_a_trailing_newline__is_400_invalid_env(api_client, make_namespace, method, url):
    make_namespace("shop")
    rw = api_client("config:read", "config:write")

    body = {} if method == "get" else {"data": {"a": 1}, "value": 1}
    response = getattr(rw, method)(url, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_env"


def test_config__namespace_with_a_trailing_newline__is_404(api_client, make_namespace):
    make_namespace("shop")

    response = api_client("config:read").get("/api/v1/config/namespaces/shop%0A/resolve")

    assert response.status_code == 404


@pytest.mark.parametrize("body", ['{"data": {"a": "\\ud800"}}', '{"data": {"\\udfff": 1}}'])
def test_config__layer_with_a_lone_surrogate__is_400_and_the_layer_is_kept(
    api_client, make_namespace, put_layer, body
):
    # Given a layer with a revision
    make_namespace("shop")
    put_layer("shop", "dev", {"a": "kept"})
    rw = api_client("config:read", "config:write")

    # When a write holds a lone surrogate
    response = rw.put("/api/v1/config/namespaces/shop/layers/dev/", body, content_type="application/json")

    # Then it is refused as bad input, and the stored layer is unchanged
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert rw.get("/api/v1/config/namespaces/shop/layers/dev/").json()["data"] == {"a": "kept"}


def test_config__value_with_a_lone_surrogate__is_400(api_client, make_namespace):
    make_namespace("shop")
    rw = api_client("config:read", "config:write")

    response = rw.put(
        "/api/v1/config/namespaces/shop/layers/dev/values/a",
        '{"value": "\\ud83d"}',
        content_type="application/json",
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("scope", "url", "body", "field"),
    [
        ("auth:write", "/api/v1/auth/accounts/", {"name": 5, "type": "service"}, "name"),
        ("auth:write", "/api/v1/auth/roles/", {"name": 7}, "name"),
        ("trace:write trace:manage", "/api/v1/trace/rules/", {"service": 5}, "service"),
        ("config:write", "/api/v1/config/namespaces/", {"name": 12}, "name"),
        ("events:write", "/api/v1/events/subscriptions/", {"name": "s", "types": ["a", 5]}, "types"),
    ],
)
def test_a_number_where_text_is_due__is_400_naming_the_field(api_client, scope, url, body, field):
    # DRF's CharField took a number as its digits: {"name": 12} made a namespace "12", and
    # {"account": 5} bound whichever account is named "5"
    answer = api_client(*scope.split(), scope.split(":")[0] + ":read").post(url, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["details"]
    assert "Not a valid string" in json.dumps(answer.json()["error"]["details"][field])
