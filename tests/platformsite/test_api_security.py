"""Every API route refuses callers without a token (401) and without the scope (403).

The routes are found by walking the URL resolver, so endpoints added later are covered
without touching this file.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

#: Routes that need a caller to be authenticated but no particular scope.
AUTHENTICATED_ONLY = {"/api/v1/auth/whoami/", "/api/v1/auth/check/"}
OPEN_PATHS = ["/healthz", "/readyz", "/api/schema/", "/api/docs/", "/metrics"]
_CONVERTER = re.compile(r"<(?:(?P<kind>\w+):)?(?P<name>\w+)>")
_SAMPLES = {
    "int": "1",
    "slug": "sample",
    "str": "sample",
    "uuid": "00000000-0000-0000-0000-000000000001",
    "path": "a/b",
    None: "sample",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _api_routes() -> dict[str, object]:
    routes = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if route.startswith("^") or not (route.startswith(("api/v1/", "api/v2/", "v1/"))):
            continue
        concrete = _CONVERTER.sub(lambda m: _SAMPLES.get(m.group("kind"), "sample"), route)
        routes.setdefault("/" + concrete, callback)
    return routes


def api_paths() -> list[str]:
    return sorted(_api_routes())


def answered_methods(callback) -> list[str]:
    """The methods a route's view has handlers for (OPTIONS and HEAD aside)."""
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return ["get"]
    return [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]


def route_methods() -> list[tuple[str, str]]:
    return [(path, method) for path, cb in sorted(_api_routes().items()) for method in answered_methods(cb)]


def service_of(path: str) -> str:
    """The service whose view answers ``path`` (root contracts such as ``/v1/traces`` included)."""
    view = getattr(resolve(path).func, "cls", None)
    return getattr(view, "service", "") or path.split("/")[3]


def test_walk__finds_every_service_api():
    # given the resolver / when walked
    services = {service_of(path) for path in api_paths() if path.startswith("/api/v1/")}
    # then every service's API is among them
    assert services >= {"auth", "config", "discovery", "events", "monitor", "router", "trace", "db"}


@pytest.mark.django_db
@pytest.mark.parametrize("path", api_paths())
def test_api_route__without_token__is_401_in_error_shape(client, path):
    # when
    response = client.get(path)
    # then
    assert response.status_code == 401, (path, response.content)
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("path", [p for p in api_paths() if p not in AUTHENTICATED_ONLY])
def test_api_route__token_without_scope__is_403(api_client, path):
    # given a token holding a scope of some other service only
    other = "trace:read" if service_of(path) != "trace" else "config:read"
    caller = api_client(other)
    # when
    response = caller.get(path)
    # then
    assert response.status_code == 403, (path, response.content)
    assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method"), route_methods())
def test_api_route__every_method__without_token__is_401(client, path, method):
    response = getattr(client, method)(path, {}, content_type="application/json")

    assert response.status_code == 401, (method, path, response.content)
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "method"), [(p, m) for p, m in route_methods() if m != "get" and p not in AUTHENTICATED_ONLY]
)
def test_api_route__every_write__with_only_the_read_scope__is_403(api_client, path, method):
    # given a token holding the service's read scope (writes need write, or admin for keys)
    caller = api_client(f"{service_of(path)}:read")
    # when
    response = getattr(caller, method)(path, {}, format="json")
    # then
    assert response.status_code == 403, (method, path, response.content)
    assert response.json()["error"]["code"] == "insufficient_scope"


@pytest.mark.django_db
@pytest.mark.parametrize("path", api_paths())
def test_api_route__bad_token__is_401(client, path):
    response = client.get(path, HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.django_db
@pytest.mark.parametrize("path", OPEN_PATHS)
def test_open_path__without_token__answers(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "service", ["auth", "config", "discovery", "events", "monitor", "router", "trace", "db"]
)
def test_service_root__with_read_scope__lists_its_routes(api_client, service):
    # given a service whose root is its index (events' root is its event collection)
    from django.urls import resolve

    from platformsite.api.views import ServiceRootView

    if getattr(resolve(f"/api/v1/{service}/").func, "view_class", None) is not ServiceRootView:
        pytest.skip(f"/api/v1/{service}/ is a resource collection")
    caller = api_client(f"{service}:read")
    # when
    response = caller.get(f"/api/v1/{service}/")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["service"] == service
    assert f"/api/v1/{service}/" in body["routes"]


@pytest.mark.django_db
def test_write_scope__does_not_grant_read(api_client):
    response = api_client("monitor:write").get("/api/v1/monitor/ping/")
    assert response.status_code == 403


@pytest.mark.django_db
def test_admin_scope__grants_every_service(api_client):
    caller = api_client("admin")
    for service in ("config", "events", "db"):
        assert caller.get(f"/api/v1/{service}/").status_code == 200
