"""Every declared websocket refuses a caller without credentials (4401) and without the scope (4403).

The paths come from the services' declarations, so a service added later is covered too.
"""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from platformsite.asgi import application
from platformsite.services import all_services

pytestmark = pytest.mark.django_db(transaction=True)

SOCKETS = [(service.name, service.websocket_path) for service in all_services() if service.websocket_path]


def close_code(path: str, headers: list[tuple[bytes, bytes]]) -> object:
    async def run():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        if connected:
            await communicator.disconnect()
        return code if not connected else "accepted"

    return async_to_sync(run)()


def test_walk__finds_the_built_services_sockets():
    assert {name for name, _ in SOCKETS} >= {"config", "discovery", "events"}


@pytest.mark.parametrize(("name", "path"), SOCKETS)
def test_websocket__without_credentials__is_closed_4401(name, path):
    assert close_code(path, []) == 4401


@pytest.mark.parametrize(("name", "path"), SOCKETS)
def test_websocket__token_of_another_service__is_closed_4403(issue_token, name, path):
    token = issue_token("trace:read" if name != "trace" else "config:read")

    assert close_code(path, [(b"authorization", f"Bearer {token}".encode())]) == 4403


@pytest.mark.parametrize(
    "path", ["/ws/auth/", "/ws/router/", "/ws/trace/", "/ws/db/", "/ws/nope/", "/elsewhere"]
)
def test_websocket__a_path_no_service_serves__is_refused_at_the_handshake(issue_token, path):
    # Given a caller holding every scope
    token = issue_token("admin")

    # When it opens a socket no service serves, Then the handshake is refused (not a 500)
    assert close_code(path, [(b"authorization", f"Bearer {token}".encode())]) == 4404
