"""A websocket of the platform's ASGI application, opened as a service would open it."""

from __future__ import annotations

from asgiref.sync import async_to_sync
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


def refusal(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> int | str:
    """The close code a socket is refused with: accepted, then closed at once (a real client sees
    the code only so), or ``"accepted"`` when it stays open and speaks."""

    async def run() -> int | str:
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            return f"refused at the handshake ({code})"
        first = await communicator.receive_output(timeout=5)
        if first["type"] == "websocket.close":
            return first["code"]
        await communicator.disconnect()
        return "accepted"

    return async_to_sync(run)()


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]
