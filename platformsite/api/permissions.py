"""Scope permissions: ``<service>:read`` for reads, ``<service>:write`` for writes, or ``admin``.

A session (dashboard) user who is active staff is treated as holding ``admin``; other session
users hold no scope.  Views name their service with ``service = "config"``, or list the scopes
they need per method in ``required_scopes``; a view that names neither needs ``admin``.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission

from auth_app.access import granted_scopes

__all__ = ["HasServiceScope", "IsAuthenticated", "granted_scopes", "required_scope"]


def required_scope(request: Any, view: Any) -> str | None:
    per_method = getattr(view, "required_scopes", None)
    if per_method is not None:
        return per_method.get(request.method, per_method.get("*", "admin"))
    service = getattr(view, "service", "")
    if not service:
        return "admin"
    return f"{service}:{'read' if request.method in SAFE_METHODS else 'write'}"


class HasServiceScope(BasePermission):
    code = "insufficient_scope"

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        needed = required_scope(request, view)
        if needed is None:
            return True
        granted = granted_scopes(request)
        if "admin" in granted or needed in granted:
            return True
        self.message = f"This call needs the '{needed}' scope."
        return False


class IsAuthenticated(BasePermission):
    """Any authenticated caller, whatever its scopes (e.g. ``whoami``)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)
