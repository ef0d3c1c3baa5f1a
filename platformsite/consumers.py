"""The base of every service's websocket consumer: scope checks at connect, JSON frames.

A connection is authenticated by the session (dashboards) or a bearer token (SDK: the
``Authorization`` header, or ``?access_token=`` where a client cannot set headers).  Without
credentials it is closed with code 4401, without the service's read scope with 4403.  A frame
that is not JSON text is answered with a ``parse_error`` message and the connection stays open.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from auth_app.access import TokenInfo

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class ServiceConsumer(AsyncJsonWebsocketConsumer):
    service = ""

    @property
    def subject(self) -> str:
        token = self.scope.get("token")
        if isinstance(token, TokenInfo):
            return token.subject
        return f"user:{self.scope['user'].get_username()}"

    def granted(self, scope_name: str) -> bool:
        token = self.scope.get("token")
        if isinstance(token, TokenInfo):
            return token.has_scope(scope_name)
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (self.scope.get("token") or (user is not None and user.is_authenticated)):
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not self.granted(f"{self.service}:read"):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        await self.on_connected()

    async def on_connected(self) -> None:
        """Called once the connection is accepted."""

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its ``close_old_connections`` before every message.

        Channels runs that in a worker thread before each handler: a thread hop per message and
        connection, which made a change pushed to 200 watchers of one process queue 200 hops on
        the event loop (a third of its time in the propagation benchmark).  These consumers reach
        the database only through ``database_sync_to_async``, which closes stale connections
        itself, in the thread that uses them, before and after each call.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            if text_data is None:
                raise ValueError("a binary frame")
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):  # not JSON text, or nested too deeply to parse
            await self.error("parse_error", "Send JSON text messages.")
            return
        await self.receive_json(content, **kwargs)

    async def error(self, code: str, message: str) -> None:
        """Tell the client its message was refused (a service may shape this its own way)."""
        await self.send_json({"type": "error", "error": {"code": code, "message": message}})


class NoSuchSocket(AsyncJsonWebsocketConsumer):
    """Any websocket path no service serves: the handshake is refused (HTTP 403), not a 500."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)
