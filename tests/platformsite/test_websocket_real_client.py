"""A real websocket client (the ``websockets`` library, as the SDK uses) against a real ASGI server
sees the refusal codes: 4401, 4403 and 4404 arrive as close codes, not as an HTTP 403 handshake
refusal that would look the same for every reason."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from platform_client.session import PlatformSession
from tests.servers import asgi_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    with asgi_platform(tmp_path_factory.mktemp("ws-real-client")) as running:
        yield running


def close_code(url: str, token: str | None = None) -> int | None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with connect(url, additional_headers=headers, open_timeout=5) as ws:
        try:
            for _ in range(3):  # an error frame may come first
                ws.recv(timeout=5)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
    return None


def test_refusals_reach_a_real_client_as_close_codes(platform):
    base, client_id, secret = platform
    ws = base.replace("http://", "ws://")
    with PlatformSession(base, client_id, secret, scopes=["trace:read"]) as session:
        trace_only = session.credentials.token()

    assert close_code(f"{ws}/ws/discovery/") == 4401
    assert close_code(f"{ws}/ws/discovery/", "not-a-token") == 4401
    assert close_code(f"{ws}/ws/discovery/", trace_only) == 4403
    assert close_code(f"{ws}/ws/nope/", trace_only) == 4404
    assert close_code(f"{ws}/ws/trace/?errors=maybe", trace_only) == 4400
