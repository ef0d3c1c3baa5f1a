"""The auth kernel's one public face, for every other app and for ``platformsite``.

Who is calling (the token a request carries, or a dashboard session), which scopes they hold,
and whether the policy lets them do an action on a resource.  Other apps import from here only;
the modules behind it (tokens, policy, selectors, audit) are the auth service's own business.
"""

from __future__ import annotations

from typing import Any

from auth_app.audit import audit
from auth_app.policy import Decision, PolicyError
from auth_app.selectors import account_role_names, is_allowed, warm_decision
from auth_app.tokens import (
    TokenInfo,
    cached_bearer,
    cached_checksum,
    token_checksum,
    validate_bearer,
    validate_checksum,
)

__all__ = [
    "Decision",
    "PolicyError",
    "TokenInfo",
    "actor",
    "audit",
    "cached_bearer",
    "cached_checksum",
    "granted_scopes",
    "is_allowed",
    "is_request_allowed",
    "principal",
    "role_names",
    "token_checksum",
    "validate_bearer",
    "validate_checksum",
    "warm_decision",
]


def granted_scopes(request: Any) -> frozenset[str]:
    """The scopes a request holds: its token's, or ``admin`` for an active staff session."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, TokenInfo):
        return auth.scopes
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return frozenset({"admin"})
    return frozenset()


def principal(request: Any) -> tuple[int | None, frozenset[str]]:
    """The account (None for a session) and the scopes behind a request."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, TokenInfo):
        return auth.account_id, auth.scopes
    return None, granted_scopes(request)


def actor(request: Any) -> str:
    """Who a request acts as, in audit records and ownership: ``service:x`` or ``user:y``."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, TokenInfo):
        return auth.subject
    return f"user:{request.user.get_username()}"


def is_request_allowed(request: Any, *, resource: str, action: str) -> Decision:
    """:func:`is_allowed` for the caller of a request.  Raises PolicyError for a bad resource."""
    account_id, scopes = principal(request)
    return is_allowed(account_id=account_id, scopes=scopes, resource=resource, action=action)


def role_names(request: Any) -> frozenset[str]:
    """The roles bound to the account behind a request (a session has none)."""
    return account_role_names(principal(request)[0])
