"""One error shape for every API failure: ``{"error": {"code", "message", "details"}}``.

DRF exceptions go through :func:`exception_handler`; Django's own 400/403/404/500 answers on
API paths go through the ``handler*`` views below, so a client never has to parse HTML.
Outside API paths the handlers render the usual HTML pages.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from platformsite.cache import CACHE_DOWN, RedisDown
from platformsite.db import DatabaseDown

log = logging.getLogger(__name__)


class PlatformError(Exception):
    """An error any service raises: answered with ``status`` and a stable ``code`` in the error shape.

    Services raise the subclasses below (or their own, derived from them); views never build an
    error body by hand.
    """

    status = 400
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.details = details if details is not None else {}


class Invalid(PlatformError):
    """The request is not valid (400)."""


class Denied(PlatformError):
    """The caller may not do what it asked (403)."""

    status = 403
    code = "permission_denied"


class NotFound(PlatformError):
    """Nothing is found where the request points (404)."""

    status = 404
    code = "not_found"


class Conflict(PlatformError):
    """A write lost a race or its precondition (409)."""

    status = 409
    code = "conflict"


class TooLarge(PlatformError):
    """The request or what it would store is too large (413)."""

    status = 413
    code = "too_large"


class Unavailable(PlatformError):
    """Something the call needs is down for now (503, with ``Retry-After`` in seconds)."""

    status = 503
    code = "unavailable"

    def __init__(
        self, message: str, code: str | None = None, details: Any = None, retry_after: int = 5
    ) -> None:
        super().__init__(message, code, details)
        self.retry_after = retry_after


#: A backing service that cannot be reached for now (the database down or restarting, a pooled
#: connection it closed, Redis down): the call may be sent again, so it is a 503, not a 500.
OUTAGES = (OperationalError, InterfaceError, *CACHE_DOWN)


def outage(exc: Exception) -> Unavailable:
    """The 503 a backing service's outage (one of :data:`OUTAGES`) is answered with, logged once:
    the same for the API's exception handler and for :func:`server_error`."""
    log.warning("answered 503: %s: %s", type(exc).__name__, exc)
    message = "A service the platform needs is unavailable for now; retry shortly."
    # Known down: come back once it may be tried again.
    for down in (exc, exc.__cause__):
        if isinstance(down, DatabaseDown | RedisDown):
            return Unavailable(message, retry_after=down.retry_after)
    return Unavailable(message)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def json_error(status_code: int, code: str, message: str, details: Any = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)


def _first_code(codes: Any) -> str | None:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        codes = list(codes.values())
    for item in codes or ():
        found = _first_code(item)
        if found:
            return found
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every answer reshaped into the platform's error shape."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, OUTAGES):
        exc = outage(exc)
    if isinstance(exc, PlatformError):
        response = Response(error_body(exc.code, str(exc), exc.details), status=exc.status)
        if isinstance(exc, Unavailable):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, RequestDataTooBig):
        exc = exceptions.APIException()
        exc.status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
        exc.detail = exceptions.ErrorDetail("The request body is too large.", code="request_too_large")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "The request is not valid.", exc.detail)
    else:
        detail = getattr(exc, "detail", "")
        code = _first_code(exc.get_codes()) if isinstance(exc, exceptions.APIException) else None
        details: dict[str, Any] = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details["retry_after_seconds"] = round(exc.wait)
        if isinstance(detail, dict | list):
            details["fields"] = detail
            detail = "The request is not valid."
        body = error_body(code or "error", str(detail), details)
    response.data = body
    return response


def is_api_path(path: str) -> bool:
    return path.startswith(settings.PLATFORM_API_PREFIXES)


def _framed() -> bool:
    """Whether a page can be drawn in the dashboards' frame: a server of one service
    (``runservice``) serves no dashboard to link back to."""
    try:
        reverse("ui:index")
    except NoReverseMatch:
        return False
    return True


def bad_request(request: HttpRequest, exception: Exception, template_name: str = "400.html") -> HttpResponse:
    if is_api_path(request.path):
        if isinstance(exception, RequestDataTooBig):
            return json_error(413, "request_too_large", "The request body is too large.")
        return json_error(400, "bad_request", "The request could not be understood.")
    if not _framed():
        return HttpResponse("Bad Request", status=400, content_type="text/plain; charset=utf-8")
    return defaults.bad_request(request, exception)


def permission_denied(
    request: HttpRequest, exception: Exception, template_name: str = "403.html"
) -> HttpResponse:
    if is_api_path(request.path):
        return json_error(403, "permission_denied", "You do not have permission to do this.")
    return defaults.permission_denied(request, exception)


def page_not_found(
    request: HttpRequest, exception: Exception, template_name: str = "404.html"
) -> HttpResponse:
    if is_api_path(request.path):
        details: dict[str, Any] = {"path": request.path}
        message = "Nothing is found at this address."
        if isinstance(exception, Resolver404) and (other := _other_slash(request)):
            details["did_you_mean"] = other
            with_or_without = "without" if request.path.endswith("/") else "with"
            message = f"Nothing is found at this address; {other} ({with_or_without} the trailing slash) is."
        return json_error(404, "not_found", message, details)
    if not _framed():
        return HttpResponse("Not Found", status=404, content_type="text/plain; charset=utf-8")
    return defaults.page_not_found(request, exception)


def _other_slash(request: HttpRequest) -> str | None:
    """The request's path with its trailing slash added or removed, if that is served: the API's
    paths are not all alike, and a missing slash is the likeliest slip."""
    path_info = request.path_info
    other = path_info[:-1] if path_info.endswith("/") else path_info + "/"
    if not other or other == "/":
        return None
    try:
        resolve(other, getattr(request, "urlconf", None))
    except Resolver404:
        return None
    return request.path[:-1] if request.path.endswith("/") else request.path + "/"


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """A failure no view answered for.  The database or Redis down (in a dashboard view, the
    admin, a middleware saving a session) is a 503 with Retry-After, as the API answers it: the
    call may be sent again.  Django calls this inside its ``except`` block."""
    failure = sys.exc_info()[1]
    if isinstance(failure, OUTAGES):
        unavailable = outage(failure)
        if is_api_path(request.path):
            response = json_error(unavailable.status, unavailable.code, str(unavailable))
        else:
            response = HttpResponse(str(unavailable), status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(unavailable.retry_after)
        return response
    if is_api_path(request.path):
        return json_error(
            500,
            "server_error",
            "The platform failed to answer; the failure is logged.",
            {"request_id": getattr(request, "request_id", "")},
        )
    return defaults.server_error(request)
