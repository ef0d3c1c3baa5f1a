"""The OpenAPI description of the API (drf-spectacular): what each operation answers, errors included.

:class:`PlatformAutoSchema` (``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``) documents, on top of what
a view's ``@extend_schema`` declares:

* the error statuses an operation can answer, each with the one error body (the ``Error``
  component, ``{"error": {"code", "message", "details"}}``), from what the operation is:
  401/403 where it needs credentials, 429 where it is throttled, 400 where it takes input (path,
  query or body; a cursor no list gave is a 400 ``invalid_cursor``), 404 where its path has
  parameters or it answers cursor pages (a filter may name what does not exist, as the config
  history's ``?namespace=``), 409 where its body carries a version (``expected_revision``),
  413/415 where it accepts a body;
* lists as what they are: a ``many=True`` response of a GET on a paginating view (a
  :class:`~platformsite.api.views.ServiceView`, whose lists are ``self.paginate(...)`` cursor
  pages) is the page ``{next, previous, results: [...]}``, with its ``cursor`` and ``page_size``
  parameters;
* a DELETE that declares a body as answering it (200), not 204.

A view adds a status by listing it in ``responses`` (``{409: ERROR}`` for the error body) and drops
one the rules would add with ``{404: NOT_ANSWERED}``; a view whose GET answers a bare list sets
``pagination_class = None``.  ``OBJECTS`` stands for a list of free-form objects.
"""

from __future__ import annotations

from typing import Any

import uritemplate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import (
    ResolvedComponent,
    build_media_type_object,
    force_instance,
    is_serializer,
)
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny

from platformsite.api.pagination import CursorPagination

__all__ = ["ERROR", "ERROR_COMPONENT", "NOT_ANSWERED", "OBJECTS", "PlatformAutoSchema"]

#: The name of the error body's component.
ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every API failure answers this body.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "A stable, machine-readable code, e.g. 'invalid', 'not_found'.",
                },
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": {
                    "description": "What the code needs said: e.g. each bad field's errors for "
                    "'invalid', 'retry_after_seconds' when throttled; {} when nothing."
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

#: Why each error status is answered (its response's description).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request is not valid: a parameter, filter, page cursor or body field (details name each).",
    401: "No credentials, or an invalid, expired or revoked token.",
    403: "The token lacks the scope, or the policy does not allow the resource.",
    404: "Nothing is found where the request points (a path, or a filter naming a namespace or service).",
    409: "The write conflicts with what is stored: a name already taken, a stale expected revision.",
    413: "The request body, or what it would store, is too large.",
    415: "The body's media type is not one the operation accepts.",
    429: "Too many requests; details.retry_after_seconds says when to retry.",
}

#: Request body fields that carry the version a write expects (409 when it is stale).
VERSION_FIELDS = frozenset({"expected_revision"})

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: ``extend_schema(responses={409: ERROR})``: the operation answers this status with the error body.
ERROR = _Marker("ERROR")
#: ``extend_schema(responses={404: NOT_ANSWERED})``: the operation never answers this status
#: (where the rules above would document it).
NOT_ANSWERED = _Marker("NOT_ANSWERED")

#: ``extend_schema(responses=OBJECTS)``: a list of free-form objects (on a paginating GET, a page of them).
OBJECTS = serializers.ListSerializer(child=serializers.DictField())

_MISSING = object()


class PlatformAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, documenting error statuses, cursor pages and DELETE bodies."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        self._not_answered: set[str] = set()
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses: dict[str, Any] = operation["responses"]
        for code in self._not_answered:
            responses.pop(code, None)
        for status in self.error_statuses(operation):
            code = str(status)
            if code not in responses and code not in self._not_answered:
                responses[code] = self._error_response(status)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    # --- Errors -----------------------------------------------------------------------------------

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        """The error statuses the operation can answer, from what it is (see the module's doc)."""
        statuses: set[int] = set()
        if self._needs_credentials(operation):
            statuses |= {401, 403}
        if self.view.get_throttles():
            statuses.add(429)
        has_body = "requestBody" in operation
        if has_body or operation.get("parameters"):
            statuses.add(400)
        if uritemplate.variables(self.path) or self._answers_pages():
            statuses.add(404)
        if has_body:
            statuses |= {413, 415}
            if self._carries_version():
                statuses.add(409)
        return statuses

    def _needs_credentials(self, operation: dict[str, Any]) -> bool:
        security = operation.get("security") or []
        if not security or {} in security:
            return False
        return not any(isinstance(permission, AllowAny) for permission in self.view.get_permissions())

    def _carries_version(self) -> bool:
        serializer = force_instance(self.get_request_serializer())
        fields = serializer.fields if is_serializer(serializer) else None
        return bool(fields) and not VERSION_FIELDS.isdisjoint(fields)

    def _error_component(self) -> dict[str, str]:
        component = ResolvedComponent(
            name=ERROR_COMPONENT, type=ResolvedComponent.SCHEMA, schema=ERROR_SCHEMA, object=ERROR_COMPONENT
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_response(self, status: int) -> dict[str, Any]:
        return {
            "content": {"application/json": build_media_type_object(self._error_component())},
            "description": ERROR_DESCRIPTIONS.get(status, "The request failed."),
        }

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: str = "response"
    ) -> dict[str, Any]:
        if serializer is ERROR:
            return self._error_response(int(status_code))
        if serializer is NOT_ANSWERED:
            self._not_answered.add(str(status_code))
            return {"description": ""}  # removed again by get_operation
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

    # --- Bodies -----------------------------------------------------------------------------------

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        # drf-spectacular documents no DELETE body; a DELETE that declares one takes it.
        self._declared_only = True
        self.method = "PUT"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method, self._declared_only = "DELETE", False

    def _get_serializer(self) -> Any:
        if getattr(self, "_declared_only", False):
            return None  # nothing declared: no body (not a guess, nor a warning)
        return super()._get_serializer()

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        declared = self.get_response_serializers()
        if self.method == "DELETE" and declared is not None and not isinstance(declared, dict):
            # drf-spectacular documents every DELETE as 204; one that declares a body answers it.
            return {"200": self._get_response_for_code(declared, "200", direction=direction)}
        return super()._get_response_bodies(direction)

    # --- Pages ------------------------------------------------------------------------------------

    def _answers_pages(self) -> bool:
        return self._get_paginator() is not None and self._is_list_view()

    def _get_paginator(self) -> BasePagination | None:
        """The view's pagination class; a ServiceView's GET lists are its cursor pages."""
        pagination_class = getattr(self.view, "pagination_class", _MISSING)
        if pagination_class is _MISSING:
            paginates = self.method == "GET" and callable(getattr(self.view, "paginate", None))
            return CursorPagination() if paginates else None
        return pagination_class() if pagination_class else None


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "platformsite.api.authentication.BearerTokenAuthentication"
    name = "oauth2Bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An OAuth2 access token from /o/token/ carrying the service's scopes.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "platformsite.api.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
