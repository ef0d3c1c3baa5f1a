"""The hot path answers warm, plain, allowed calls itself and leaves everything else to Django."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings
from prometheus_client import REGISTRY

from auth_app.models import Account
from auth_app.services import account_disable, binding_create, role_create, rule_create
from config_app import hot as config_hot
from config_app import services
from platformsite import hotpath
from platformsite.logging import request_id_var
from tests.hotpath import Driver

pytestmark = pytest.mark.django_db

RESOLVE = "/api/v1/config/namespaces/payments/resolve"
ROUTE = "api/v1/config/namespaces/<str:ns>/resolve"


@pytest.fixture
def driver() -> Driver:
    return Driver(config_hot.ROUTES)


@pytest.fixture
def payments(db):
    services.namespace_create(name="payments")
    services.layer_set(namespace="payments", env="default", data={"db": {"host": "h"}}, author="t")


@pytest.fixture
def reader(issue_token, payments) -> str:
    return issue_token("config:read")


def test_warm_read__answered_by_the_hot_path__same_answer_as_django(driver, reader):
    # When a caller reads the same document twice
    first, second = driver.warm("GET", RESOLVE, reader)

    # Then Django answered the first (warming the caches) and the hot path the second, identically
    assert (first.hot, second.hot) == (False, True)
    assert second.status == 200
    assert second.comparable() == first.comparable()
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_hot_answer__queries_no_database(driver, reader, django_assert_num_queries):
    driver.get(RESOLVE, reader)

    with django_assert_num_queries(0):
        reply = driver.get(RESOLVE, reader)

    assert reply.hot and reply.status == 200


def test_caller_request_id__echoed(driver, reader):
    driver.get(RESOLVE, reader)

    reply = driver.get(RESOLVE, reader, headers={"X-Request-ID": "trace-me-1"})

    assert reply.hot and reply.headers["X-Request-ID"] == "trace-me-1"


def test_unknown_token__django_refuses_it(driver, reader):
    driver.get(RESOLVE, reader)

    reply = driver.get(RESOLVE, "not-a-token")

    assert not reply.hot
    assert reply.status == 401
    assert reply.json()["error"]["code"] == "invalid_token"


def test_token_of_a_disabled_account__refused_at_once(driver, reader, django_capture_on_commit_callbacks):
    # Given a token the hot path has answered
    assert driver.warm("GET", RESOLVE, reader)[1].hot

    # When its account is disabled (its tokens revoked)
    with django_capture_on_commit_callbacks(execute=True):
        account_disable(account=Account.objects.order_by("-id").first())

    # Then the next call is refused, by Django
    reply = driver.get(RESOLVE, reader)
    assert not reply.hot and reply.status == 401


def test_missing_scope__django_refuses_it(driver, issue_token, payments):
    token = issue_token("discovery:read")

    _, second = driver.warm("GET", RESOLVE, token)

    assert not second.hot
    assert second.status == 403
    assert second.json()["error"]["code"] == "insufficient_scope"


def test_policy_denial__django_refuses_it(driver, reader):
    # Given a policy that lets the caller read only the "billing" namespace
    account = Account.objects.order_by("-id").first()
    role = role_create(name="billing-readers")
    rule_create(role=role, resource="config:billing/*", action="read", effect="allow", priority=0)
    binding_create(role=role, account=account)

    # When it reads payments twice (the policy compiled by the first call)
    first, second = driver.warm("GET", RESOLVE, reader)

    # Then both are refused by the full stack
    assert (first.hot, second.hot) == (False, False)
    assert second.status == 403
    assert second.json()["error"]["code"] == "policy_denied"


@override_settings(
    REST_FRAMEWORK={
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "3/min", "anon": "3/min"},
    }
)
def test_throttled_client__django_answers_429(driver, reader):
    replies = [driver.get(RESOLVE, reader) for _ in range(4)]

    assert [reply.status for reply in replies] == [200, 200, 200, 429]
    assert [reply.hot for reply in replies] == [False, True, True, False]
    assert replies[-1].json()["error"]["code"] == "throttled"


def test_if_none_match__304_from_the_hot_path(driver, reader):
    etag = driver.get(RESOLVE, reader).headers["ETag"]

    reply = driver.get(RESOLVE, reader, headers={"If-None-Match": etag})

    assert reply.hot
    assert reply.status == 304 and reply.body == b""
    assert reply.headers["ETag"] == etag
    assert reply.comparable() == Driver([]).get(RESOLVE, reader, headers={"If-None-Match": etag}).comparable()


@pytest.mark.parametrize(
    "extra",
    [
        {"headers": {"Accept": "text/html"}},
        {"headers": {"Accept": "application/xml"}},
        {"data": b"{}", "content_type": "application/json"},
        {"QUERY_STRING": "env=default&path=db"},
        {"QUERY_STRING": "wait=1ms&revision=0"},
        {"QUERY_STRING": "env=Default"},
        {"CONTENT_LENGTH": "\u00b2"},
    ],
    ids=["html", "xml", "body", "path", "wait", "bad-env", "odd-length"],
)
def test_unusual_request__left_to_django(driver, reader, extra):
    driver.get(RESOLVE, reader)
    full = Driver([]).get(RESOLVE, reader, **extra)

    reply = driver.get(RESOLVE, reader, **extra)

    assert not reply.hot
    assert reply.comparable() == full.comparable()


def test_head__left_to_django(driver, reader):
    driver.get(RESOLVE, reader)

    reply = driver.call("HEAD", RESOLVE, reader)

    assert not reply.hot and reply.status == 200


def test_hot_answer__counted_under_the_django_route(driver, reader):
    labels = {"method": "GET", "route": ROUTE, "status": "200"}
    before = REGISTRY.get_sample_value("platform_http_requests_total", labels) or 0
    driver.get(RESOLVE, reader)

    assert driver.get(RESOLVE, reader).hot

    assert REGISTRY.get_sample_value("platform_http_requests_total", labels) == before + 2


def test_route_labels_and_allow_headers__read_from_the_django_views():
    from django.urls import resolve

    from discovery_app import hot as discovery_hot
    from event_app import hot as event_hot

    samples = {
        "api/v1/config/namespaces/<str:ns>/resolve": "/api/v1/config/namespaces/a/resolve",
        "api/v1/discovery/services/<str:name>/": "/api/v1/discovery/services/a/",
        "api/v1/discovery/nodes/<str:node_id>/heartbeat/": "/api/v1/discovery/nodes/a/heartbeat/",
        "api/v1/events/": "/api/v1/events/",
    }
    for route in map(hotpath.bind, [*config_hot.ROUTES, *discovery_hot.ROUTES, *event_hot.ROUTES]):
        sample = samples[route.route]
        assert route.pattern.fullmatch(sample)
        match = resolve(sample)
        assert match.route == route.route
        view = match.func.cls()
        view.setup(RequestFactory().get(sample), **match.kwargs)  # as Django does (adds HEAD)
        assert ", ".join(view.allowed_methods) == route.allow
        assert route.method in view.allowed_methods


@override_settings(SECURE_SSL_REDIRECT=True)
def test_plain_http_with_ssl_redirect__left_to_django(driver, reader):
    replies = [driver.get(RESOLVE, reader) for _ in range(2)]

    assert [reply.hot for reply in replies] == [False, False]
    assert replies[1].status == 301


@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=3600,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_https_behind_a_proxy__hot_answer_carries_the_same_security_headers(reader):
    driver = Driver(config_hot.ROUTES)  # security headers are read from the settings when built
    proxied = {"headers": {"X-Forwarded-Proto": "https"}}

    first, second = driver.warm("GET", RESOLVE, reader, **proxied)

    assert second.hot
    assert second.comparable() == first.comparable()
    assert second.headers["Strict-Transport-Security"].startswith("max-age=3600")


def test_disabled__the_django_application_itself():
    app = object()

    with override_settings(PLATFORM_HOT_PATH=False):
        assert hotpath.with_hot_path(app) is app
    with override_settings(PLATFORM_HOT_PATH=True):
        assert isinstance(hotpath.with_hot_path(app), hotpath.HotPath)


def test_handler_error__logged_with_the_request_id_and_left_to_django(driver, reader, monkeypatch, caplog):
    driver.get(RESOLVE, reader)
    logged_as: list[str] = []

    def failing(ns: str, env: str) -> None:
        logged_as.append(request_id_var.get())
        raise ZeroDivisionError

    monkeypatch.setattr(config_hot.selectors, "resolve_warm", failing)

    reply = driver.get(RESOLVE, reader, headers={"X-Request-ID": "trace-me-2"})

    assert not reply.hot and reply.status == 200
    assert reply.headers["X-Request-ID"] == "trace-me-2"
    [record] = [record for record in caplog.records if record.name == "platformsite.hotpath"]
    assert record.exc_info[0] is ZeroDivisionError
    assert logged_as == ["trace-me-2"]


def test_rate_limit_counters_unreachable__left_to_django_not_raised(driver, reader, monkeypatch, caplog):
    # Redis stopped under load (tests/faults): the hot path's rate-limit counter raised out of the
    # WSGI application (an empty 500 from the server); the full stack answers instead.
    from redis.exceptions import ConnectionError as RedisConnectionError

    from platformsite.api import throttling

    driver.get(RESOLVE, reader)

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    monkeypatch.setattr(hotpath, "wait_seconds", unreachable)
    monkeypatch.setattr(throttling, "wait_seconds", unreachable)

    reply = driver.get(RESOLVE, reader)

    assert not reply.hot
    assert reply.status == 503 and reply.json()["error"]["code"] == "unavailable"
    assert int(reply.headers["Retry-After"]) > 0
    assert not [record for record in caplog.records if record.name == "platformsite.hotpath"]


def test_shared_cache_down_in_the_handler__left_to_django_without_a_traceback(
    driver, reader, monkeypatch, caplog
):
    # An outage, not a bug: the full stack answers it (here from the database) and logs what it
    # answers; a traceback per request from the hot path would flood the log while it lasts.
    from platformsite.cache import RedisDown

    driver.get(RESOLVE, reader)

    def down(ns: str, env: str) -> None:
        raise RedisDown("127.0.0.1:6379", 3)

    monkeypatch.setattr(config_hot.selectors, "resolve_warm", down)

    reply = driver.get(RESOLVE, reader)

    assert not reply.hot and reply.status == 200
    assert not [record for record in caplog.records if record.name == "platformsite.hotpath"]


@override_settings(PLATFORM_INGEST_MAX_BODY_BYTES=100)
def test_body_over_the_limit__django_answers_413(issue_token):
    from event_app import hot as event_hot

    driver = Driver(event_hot.ROUTES)
    token = issue_token("events:write")
    body = '{"type": "order.created", "source": "/shop", "data": "%s"}' % ("x" * 200)

    reply = driver.call("POST", "/api/v1/events/", token, data=body, content_type="application/json")

    assert not reply.hot
    assert (reply.status, reply.json()["error"]["code"]) == (413, "request_too_large")


@pytest.mark.parametrize(
    "path", [RESOLVE.replace("payments", "payments%0A"), RESOLVE.replace("payments", "Pay")]
)
def test_a_name_no_namespace_can_have__left_to_django_without_an_error(driver, reader, path, caplog):
    # Given a warm caller (the route's pattern, read from the URLconf, takes any segment)
    driver.warm("GET", RESOLVE, reader)

    # When it asks for a namespace name the grammar refuses
    reply = driver.get(path, reader)

    # Then Django answers (404), and the hot path logged no failure
    assert (reply.hot, reply.status) == (False, 404)
    assert not [r for r in caplog.records if r.name == "platformsite.hotpath"]
