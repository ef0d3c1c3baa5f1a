"""Websocket authentication and origin checks."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed

from auth_app.access import token_checksum, validate_checksum
from platformsite.api.authentication import parse_bearer, principal_for


def _raw_token(scope: dict) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            try:
                return parse_bearer(value.decode("latin-1"))
            except AuthenticationFailed:
                return None
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("access_token")
    return values[0] if values else None


class TokenAuthMiddleware(BaseMiddleware):
    """Puts the bearer token's grant in ``scope["token"]`` and its principal in ``scope["user"]``."""

    async def __call__(self, scope, receive, send):
        raw = _raw_token(scope)
        if raw:
            checksum = token_checksum(raw)
            token = await database_sync_to_async(validate_checksum)(checksum)
            if token is not None:  # the checksum, to check the token again while connected
                scope = dict(scope, token=token, token_checksum=checksum, user=principal_for(token))
        return await super().__call__(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Browsers always send Origin, which must be an allowed host; other clients send none."""

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def websocket_stack(inner):
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(inner)), settings.ALLOWED_HOSTS)
