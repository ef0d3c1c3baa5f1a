"""A websocket of the platform's ASGI application, opened as a service would open it."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

from platformsite.asgi import application


async def greeted(path: str, token: str) -> WebsocketCommunicator:
    """``path`` (``/ws/router/``) opened with ``token`` as the bearer; the connection must be
    accepted and greet with ``hello``, which is read."""
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    return communicator
