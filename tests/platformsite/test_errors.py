"""Every 4xx on an API path comes in one shape, and nothing malformed gets a 500."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import InterfaceError, OperationalError
from django.test import override_settings
from django.urls import path
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.response import Response
from rest_framework.views import APIView

from platformsite import urls as platform_urls

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platformsite.test_errors")]


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


class EchoView(APIView):
    """A write endpoint used only here, to exercise the request parsers."""

    service = "monitor"

    def post(self, request):
        return Response({"received": request.data})


class CrashView(APIView):
    service = "monitor"

    def get(self, request):
        raise RuntimeError("secret internals: do not leak")


class OutageView(APIView):
    """Fails as a request does while the database or Redis is down (the fault tests' finding)."""

    service = "monitor"
    outages = {
        "database": lambda: OperationalError("connection failed: server closed the connection unexpectedly"),
        "closed": lambda: InterfaceError("connection already closed"),
        "redis": lambda: RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused."),
        "redis-timeout": lambda: RedisTimeoutError("Timeout reading from 127.0.0.1:6391"),
    }

    def get(self, request, outage):
        raise self.outages[outage]()


def dashboard_outage(request):
    """A dashboard page (a plain Django view) while the database is down."""
    raise OperationalError("connection failed: server closed the connection unexpectedly")


def dashboard_write(request):
    """A dashboard page that writes to the session (saved by SessionMiddleware, after the view)."""
    from django.http import HttpResponse

    request.session["seen"] = True
    return HttpResponse("ok")


urlpatterns = [
    path("ui/outage/", dashboard_outage),
    path("ui/session-write/", dashboard_write),
    path("api/v1/monitor/echo/", EchoView.as_view()),
    path("api/v1/monitor/crash/", CrashView.as_view()),
    path("api/v1/monitor/outage/<str:outage>/", OutageView.as_view()),
    *platform_urls.urlpatterns,
]
handler400, handler403 = platform_urls.handler400, platform_urls.handler403
handler404, handler500 = platform_urls.handler404, platform_urls.handler500


@pytest.fixture
def writer(api_client):
    return api_client("monitor:read", "monitor:write")


def test_unknown_api_path__is_404_in_error_shape(client):
    error = assert_error_shape(client.get("/api/v1/nope/nothing"), 404, "not_found")
    assert error["details"]["path"] == "/api/v1/nope/nothing"


@pytest.mark.urls("platformsite.urls")
@pytest.mark.parametrize(
    ("method", "path", "served"),
    [
        ("post", "/api/v1/events", "/api/v1/events/"),
        ("get", "/api/v1/discovery/services", "/api/v1/discovery/services/"),
        ("get", "/api/v1/config/namespaces/global/resolve/", "/api/v1/config/namespaces/global/resolve"),
    ],
)
def test_an_api_path_served_with_the_other_trailing_slash__the_404_names_it(client, method, path, served):
    error = assert_error_shape(getattr(client, method)(path), 404, "not_found")
    assert error["details"] == {"path": path, "did_you_mean": served}
    assert served in error["message"]


@pytest.mark.urls("platformsite.urls")
def test_an_api_path_not_served_either_way__the_404_suggests_nothing(client):
    error = assert_error_shape(client.get("/api/v1/events/nosuch/thing"), 404, "not_found")
    assert error["details"] == {"path": "/api/v1/events/nosuch/thing"}


def test_unknown_html_path__is_not_json(client):
    response = client.get("/definitely-not-here/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_malformed_json__is_400(writer):
    response = writer.post("/api/v1/monitor/echo/", data="{bad", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_json_nested_too_deeply_to_parse__is_400(writer):
    body = "[" * 100_000 + "]" * 100_000
    response = writer.post("/api/v1/monitor/echo/", data=body, content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_wrong_content_type__is_415(writer):
    response = writer.post(
        "/api/v1/monitor/echo/", data="a=1", content_type="application/x-www-form-urlencoded"
    )
    assert_error_shape(response, 415, "unsupported_media_type")


def test_good_json__is_accepted(writer):
    response = writer.post("/api/v1/monitor/echo/", data={"a": 1}, format="json")
    assert response.status_code == 200
    assert response.json() == {"received": {"a": 1}}


@override_settings(PLATFORM_MAX_BODY_BYTES=100)
def test_oversized_body__is_413_before_the_view(writer):
    response = writer.post("/api/v1/monitor/echo/", data={"a": "x" * 200}, format="json")
    error = assert_error_shape(response, 413, "request_too_large")
    assert error["details"]["limit_bytes"] == 100


@override_settings(PLATFORM_MAX_BODY_BYTES=100, PLATFORM_INGEST_MAX_BODY_BYTES=10_000)
def test_ingest_path__allows_the_larger_limit(client):
    # /api/v1/events/ is an ingest path: 200 bytes pass the size gate (and then need a token).
    response = client.post("/api/v1/events/", data={"a": "x" * 200}, content_type="application/json")
    assert response.status_code == 401


def test_invalid_content_length__is_400(writer):
    response = writer.post(
        "/api/v1/monitor/echo/", data="{}", content_type="application/json", CONTENT_LENGTH="abc"
    )
    assert_error_shape(response, 400, "invalid_content_length")


def test_chunked_body_without_content_length__is_411_not_read_as_empty(writer):
    response = writer.generic(
        "PATCH",
        "/api/v1/monitor/echo/",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert_error_shape(response, 411, "length_required")


def test_method_not_allowed__is_405_in_error_shape(writer):
    response = writer.delete("/api/v1/monitor/ping/")
    assert_error_shape(response, 405, "method_not_allowed")


def test_server_error__is_500_without_traceback(writer):
    writer.raise_request_exception = False
    response = writer.get("/api/v1/monitor/crash/")
    error = assert_error_shape(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert error["details"]["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize("outage", sorted(OutageView.outages))
def test_the_database_or_redis_down__is_503_with_retry_after(writer, outage):
    # A restarted PostgreSQL closes the pooled connections, a stopped one refuses new ones, a
    # stopped Redis refuses the cache: each was a 500 under load (tests/faults); the call may be
    # sent again, so it is a 503 that says when.
    writer.raise_request_exception = False
    response = writer.get(f"/api/v1/monitor/outage/{outage}/")
    error = assert_error_shape(response, 503, "unavailable")
    assert int(response["Retry-After"]) > 0
    assert "127.0.0.1" not in response.content.decode() and "connection" not in error["message"]


def test_the_database_down_under_a_dashboard__is_503_with_retry_after(client):
    client.raise_request_exception = False
    response = client.get("/ui/outage/")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert "retry" in response.content.decode() and "127.0.0.1" not in response.content.decode()


def test_the_database_down_while_a_middleware_saves_the_session__is_503(client, settings, monkeypatch):
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore

    def down(self, must_create=False):
        raise OperationalError("connection failed: server closed the connection unexpectedly")

    monkeypatch.setattr(store, "save", down)
    client.raise_request_exception = False
    response = client.get("/ui/session-write/")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer a b", "Bearer \x01token"],
)
def test_malformed_authorization_header__is_401(client, header):
    response = client.get("/api/v1/monitor/ping/", HTTP_AUTHORIZATION=header)
    assert_error_shape(response, 401)


def test_other_auth_scheme__is_401_not_authenticated(client):
    response = client.get("/api/v1/monitor/ping/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert_error_shape(response, 401, "not_authenticated")


def test_request_id__is_echoed_when_sane_and_replaced_otherwise(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert replaced != "bad id with spaces" and len(replaced) == 32


def test_throttle__over_the_client_rate__is_429(api_client, settings):
    # given a rate of 3 calls a minute per client
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "60/min", "client": "3/min"},
    }
    caller = api_client("monitor:read")
    # when the client calls four times
    statuses = [caller.get("/api/v1/monitor/ping/").status_code for _ in range(4)]
    # then the fourth is throttled, and says when to retry
    assert statuses == [200, 200, 200, 429]
    error = assert_error_shape(caller.get("/api/v1/monitor/ping/"), 429, "throttled")
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    # and another client is not affected
    assert api_client("monitor:read").get("/api/v1/monitor/ping/").status_code == 200


def test_throttle__counts_every_process_through_the_shared_cache(api_client, settings):
    # given a limit of 5 a minute, and 4 calls already counted by other processes
    from django.core.cache import cache

    from platformsite.api import throttling

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "60/min", "client": "5/min"},
    }
    caller = api_client("monitor:read")
    assert caller.get("/api/v1/monitor/ping/").status_code == 200
    key = next(iter(throttling._counters.windows))
    window = throttling._counters.windows[key].number
    cache.incr(f"throttle:{key}:{window}", 4)
    # when this process calls again / then the shared total (6) is over the limit
    assert caller.get("/api/v1/monitor/ping/").status_code == 429


@pytest.mark.parametrize(
    ("scopes", "url"),
    [
        (("config:read",), "/api/v1/config/audit/"),  # ordered by id
        (("discovery:read",), "/api/v1/discovery/services/"),  # ordered by name
    ],
)
@pytest.mark.parametrize("position", [b"abc", b"a\x00", b"9" * 5000])
def test_cursor_that_decodes_but_names_no_position__is_400_invalid_cursor(api_client, scopes, url, position):
    cursor = base64.b64encode(b"p=" + position).decode()
    response = api_client(*scopes).get(url, {"cursor": cursor})
    if url.endswith("/services/") and position != b"a\x00":
        assert response.status_code == 200  # any text is a position among names
    else:
        assert_error_shape(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ([(b"content-length", b"999999999999")], 413, "request_too_large"),
        ([(b"transfer-encoding", b"chunked")], 411, "length_required"),
    ],
)
def test_asgi__body_refused_by_its_headers__is_answered_unread(headers, status, code):
    """Django's ASGI handler reads a whole body before any middleware: the refusal comes first."""
    from asgiref.sync import async_to_sync

    from platformsite.middleware import refuse_bodies_early

    async def django(scope, receive, send):
        raise AssertionError("the body was passed on")

    async def receive():
        raise AssertionError("the body was read")

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/events/",
        "headers": [*headers, (b"x-request-id", b"req-1")],
    }
    async_to_sync(refuse_bodies_early(django))(scope, receive, send)
    start, body = sent
    assert start["status"] == status and (b"connection", b"close") in start["headers"]
    assert (b"x-request-id", b"req-1") in start["headers"]  # the caller's id, as Django's answers
    assert json.loads(body["body"])["error"]["code"] == code


def test_asgi__body_within_the_limit__goes_to_django():
    from asgiref.sync import async_to_sync

    from platformsite.middleware import refuse_bodies_early

    called = []

    async def django(scope, receive, send):
        called.append(scope["path"])

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/events/",
        "headers": [(b"content-length", b"10")],
    }
    async_to_sync(refuse_bodies_early(django))(scope, None, None)
    assert called == ["/api/v1/events/"]


@pytest.mark.urls("platformsite.urls")
def test_a_missing_row__the_404_says_what_was_looked_for(api_client):
    client = api_client("admin")
    for url, message, details in (
        ("/api/v1/events/subscriptions/nosuch/", "No subscription named 'nosuch'.", {"name": "nosuch"}),
        ("/api/v1/discovery/nodes/gone-1/", "No node 'gone-1' is registered.", {"id": "gone-1"}),
        ("/api/v1/auth/accounts/nobody/", "No account named 'nobody'.", {"name": "nobody"}),
        ("/api/v1/events/999999/", "No event 999999.", {"pk": 999999}),
    ):
        error = assert_error_shape(client.get(url), 404, "not_found")
        assert error["message"] == message
        assert error["details"] == details
