"""The base of every service's websocket consumer: scope checks at connect.

A connection is authenticated by the session (dashboards) or a bearer token (SDK: the
``Authorization`` header, or ``?access_token=`` where a client cannot set headers).  Without
credentials it is closed with code 4401, without the service's read scope with 4403.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from auth_app.tokens import TokenInfo

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


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
