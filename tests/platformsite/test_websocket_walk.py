"""Every declared websocket refuses a caller without credentials (4401) and without the scope (4403).

The paths come from the services' declarations, so a service added later is covered too.  A path
no service serves is closed with 4404 (each code sent over an accepted connection, the only way
a real client sees it), and every socket the pages and the API
indexes advertise is one that accepts.
"""

from __future__ import annotations

import logging
import re
import uuid

import pytest

from platformsite.services import all_services, served_services
from tests.sockets import refusal as close_code

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = [(service.name, service.websocket_path) for service in all_services() if service.websocket_path]


def test_walk__finds_the_built_services_sockets():
    assert {name for name, _ in SOCKETS} >= {"config", "discovery", "events"}


@pytest.mark.parametrize(("name", "path"), SOCKETS)
def test_websocket__without_credentials__is_closed_4401(name, path):
    assert close_code(path, []) == 4401


@pytest.mark.parametrize(("name", "path"), SOCKETS)
def test_websocket__token_of_another_service__is_closed_4403(issue_token, name, path):
    token = issue_token("trace:read" if name != "trace" else "config:read")

    assert close_code(path, [(b"authorization", f"Bearer {token}".encode())]) == 4403


UNSERVED = [
    "/ws/auth/",
    "/ws/db/",
    "/ws/nope/",
    f"/ws/{uuid.uuid4().hex}/",
    f"/ws/config/{uuid.uuid4().hex}/",
    "/elsewhere",
]


@pytest.mark.parametrize("path", UNSERVED)
def test_websocket__a_path_no_service_serves__is_closed_4404(issue_token, path, caplog):
    # Given a caller holding every scope
    token = issue_token("admin")

    # When it opens a socket no service serves, Then it is closed with 4404 (not a 500)
    with caplog.at_level(logging.INFO):
        assert close_code(path, [(b"authorization", f"Bearer {token}".encode())]) == 4404

    # And nothing is logged as an error
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("path", ["/ws/nope/", f"/ws/{uuid.uuid4().hex}/"])
def test_websocket__a_path_no_service_serves__is_closed_4404_without_credentials_too(path):
    assert close_code(path, []) == 4404


WS_PATH = re.compile(r"/ws/[a-z0-9_-]+/")


def advertised_sockets(client, staff_user) -> dict[str, set[str]]:
    """Every ``/ws/...`` path the home page, each service page and each API index names, by where."""
    client.force_login(staff_user)
    found: dict[str, set[str]] = {}
    for page in ["/ui/", *(f"/ui/{service.name}/" for service in served_services())]:
        response = client.get(page)
        assert response.status_code == 200, page
        for path in WS_PATH.findall(response.content.decode()):
            found.setdefault(path, set()).add(page)
    for service in served_services():
        body = client.get(f"/api/v1/{service.name}/").json()
        if isinstance(body, dict) and body.get("service") == service.name:  # a ServiceRootView
            for path in WS_PATH.findall(str(body.get("websocket") or "")):
                found.setdefault(path, set()).add(f"/api/v1/{service.name}/")
    return found


def test_advertised_sockets__are_exactly_the_declared_ones(client, staff_user):
    advertised = advertised_sockets(client, staff_user)

    assert set(advertised) == {path for _, path in SOCKETS}


def test_advertised_sockets__each_accepts_a_caller_with_the_scope(client, staff_user, issue_token):
    # Given every websocket path the dashboards and the API indexes advertise
    advertised = advertised_sockets(client, staff_user)
    assert advertised
    token = issue_token("admin")

    # When a caller holding every scope opens each, Then each accepts it
    refused = {
        path: (code, sorted(where))
        for path, where in advertised.items()
        if (code := close_code(path, [(b"authorization", f"Bearer {token}".encode())])) != "accepted"
    }
    assert refused == {}


def test_service_index__names_its_websocket_only_when_it_serves_one(api_client):
    caller = api_client("admin")

    names = ("config", "discovery", "auth", "monitor")
    indexes = {name: caller.get(f"/api/v1/{name}/").json() for name in names}

    assert indexes["config"]["websocket"] == "/ws/config/"
    assert indexes["discovery"]["websocket"] == "/ws/discovery/"
    assert indexes["auth"]["websocket"] is None
    assert (indexes["monitor"]["websocket"], indexes["monitor"]["built"]) == ("/ws/monitor/", True)
