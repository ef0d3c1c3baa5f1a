"""Every read route, on any query string: an answer or a 4xx in the error shape, never a 5xx.
Routes with path parameters read resources stored first (or unknown ones: 404s).

The query's names are the route's documented parameters (from the OpenAPI schema) and a few it
does not document; the values are any text, numbers out of range, times, NUL characters.  The
caller holds ``admin``, so every refusal is the input's.  (Schemathesis fuzzes the documented
parameters with values of their documented types; this test sends what a client might send.)
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.platformsite.test_body_fuzz import NAMES, STORED, seed

VALUES = st.one_of(
    st.text(max_size=25),
    st.sampled_from(["", "0", "-1", "1e9", "9" * 40, "²", "NaN", "true", "*", ",", "a:b", "\x00"]),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)\Z"),
    st.integers(-(2**70), 2**70).map(str),
)
EXTRA_NAMES = ["x", "format", "page", "limit", "cursor", "ordering", "ext.a", "labels", "wait"]


def routes() -> dict[str, list[str]]:
    """GET paths without path parameters -> their documented query parameter names."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = {}
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        found[path] = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
    return found


ROUTES = routes()


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(ROUTES))
def test_any_query__answers_or_4xx(path, api_client, settings):
    settings.CONFIG_MAX_WAIT_SECONDS = 0.01
    settings.DISCOVERY_MAX_WAIT_SECONDS = 0.01
    caller = api_client("admin")
    names = st.sampled_from(sorted(set(ROUTES[path] + EXTRA_NAMES)))

    @settings_(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(names, VALUES), max_size=4))
    def ask(pairs):
        query = "&".join(f"{quote(name)}={quote(value)}" for name, value in pairs)
        response = caller.get(f"{path}?{query}")
        event(f"status {response.status_code}")
        assert response.status_code < 500, (path, query, response.status_code, response.content[:300])
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
            assert set(response.json()["error"]) == {"code", "message", "details"}, response.content[:300]

    ask()


settings_ = settings


def stored_routes() -> dict[str, list[str]]:
    """GET paths with path parameters, on the resources ``seed`` stores -> their query parameters."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = {}
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None or "{" not in path or not path.startswith("/api/"):
            continue
        named = NAMES.get(path.split("{", 1)[0])
        concrete = re.sub(r"\{(\w+)\}", lambda m, named=named: named or STORED.get(m.group(1), "web"), path)
        found[concrete] = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
    return found


STORED_ROUTES = stored_routes()


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(STORED_ROUTES))
def test_any_query_on_a_stored_resource__answers_or_4xx(path, api_client, settings):
    settings.CONFIG_MAX_WAIT_SECONDS = 0.01
    settings.DISCOVERY_MAX_WAIT_SECONDS = 0.01
    caller = api_client("admin")
    seed(caller)
    names = st.sampled_from(sorted(set(STORED_ROUTES[path] + EXTRA_NAMES)))

    @settings_(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(names, VALUES), max_size=4))
    def ask(pairs):
        query = "&".join(f"{quote(name)}={quote(value)}" for name, value in pairs)
        response = caller.get(f"{path}?{query}")
        event(f"status {response.status_code}")
        assert response.status_code < 500, (path, query, response.status_code, response.content[:300])
        if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
            assert set(response.json()["error"]) == {"code", "message", "details"}, response.content[:300]

    ask()


# --- What the fuzzing found ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/v2/traces?serviceName=a%00b",
        "/api/v2/traces?annotationQuery=http.status%00=500",
        "/api/v2/autocompleteValues?key=%00",
        "/api/v2/remoteServices?serviceName=web%00",
    ],
)
def test_zipkin_query__a_nul_character__400_not_500(api_client, url):
    # PostgreSQL refuses NUL in text: the Zipkin query API passed it on (500 there)
    response = api_client("trace:read").get(url)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.django_db
@pytest.mark.parametrize("months", ["\u00b2", "\u0661", "0", "25"])
def test_monitor_uptime__months_not_ascii_digits__400_not_500(api_client, months):
    # str.isdigit takes superscript two, which int() refuses: the uptime views raised ValueError (a 500)
    caller = api_client("admin")
    seed(caller)

    response = caller.get("/api/v1/monitor/services/web/uptime/", {"months": months})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_months"
