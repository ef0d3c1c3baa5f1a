"""API authentication: OAuth2 bearer tokens (services, SDK) and sessions (dashboards, browser)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from rest_framework import authentication, exceptions

from auth_app.access import TokenInfo, audit, validate_bearer
from platformsite.api.throttling import client_address


class ServicePrincipal:
    """The ``request.user`` of a call made with a service's (client-credentials) token."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, token: TokenInfo) -> None:
        self.token = token
        self.username = token.subject

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def principal_for(token: TokenInfo) -> Any:
    """The user behind a token: a lazily loaded user, or a service principal."""
    if token.user_id is None:
        return ServicePrincipal(token)
    user_id = token.user_id
    return SimpleLazyObject(lambda: get_user_model().objects.get(pk=user_id))


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for other schemes.

    Raises ``AuthenticationFailed`` for a Bearer header that is malformed.
    """
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = credentials.strip()
    if not token or " " in token or len(token) > 4096 or not token.isprintable():
        raise exceptions.AuthenticationFailed(
            "The Authorization header must be 'Bearer <token>'.", code="malformed_authorization"
        )
    return token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: HttpRequest) -> tuple[Any, TokenInfo] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw = parse_bearer(header)
        if raw is None:
            return None
        token = validate_bearer(raw)
        if token is None:
            audit(
                "auth.authentication.failed",
                subject="bearer",
                endpoint=request.path,
                ip=client_address(request),
            )
            raise exceptions.AuthenticationFailed(
                "The access token is invalid, expired or revoked.", code="invalid_token"
            )
        return principal_for(token), token

    def authenticate_header(self, request: HttpRequest) -> str:
        return 'Bearer realm="platform"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Django sessions (dashboards and the browsable API), CSRF-checked on writes."""
