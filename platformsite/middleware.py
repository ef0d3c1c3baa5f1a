"""Platform middleware: request and trace ids, the body size limit, request metrics; and the
session-side middlewares made to step aside for bearer-token API calls."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware import clickjacking as clickjacking_middleware
from django.middleware import csrf as csrf_middleware

from platformsite import observers
from platformsite.api.errors import error_body
from platformsite.logging import request_id_var, trace_id_var
from platformsite.metrics import HTTP_LATENCY, HTTP_REQUESTS
from platformsite.services import ingest_paths

#: One line per request: method, path, status, milliseconds (PLATFORM_ACCESS_LOG).
access_log = logging.getLogger("platform.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\Z")


def request_id_for(incoming: str) -> str:
    """The caller's ``X-Request-ID`` if it is a plausible id, else a new one."""
    return incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


@contextmanager
def request_context(meta: Mapping[str, str]) -> Iterator[str]:
    """Tag the logs written meanwhile with the request's ids; yields its request id (the caller's
    ``X-Request-ID`` if it is a plausible id, else a new one)."""
    request_id = request_id_for(meta.get("HTTP_X_REQUEST_ID", ""))
    match = _TRACEPARENT.match(meta.get("HTTP_TRACEPARENT", ""))
    id_token = request_id_var.set(request_id)
    trace_token = trace_id_var.set(match.group(1) if match else "")
    try:
        yield request_id
    finally:
        request_id_var.reset(id_token)
        trace_id_var.reset(trace_token)


def _log_access(request: HttpRequest, response: HttpResponse, elapsed: float) -> None:
    duration_ms = round(elapsed * 1000, 1)
    access_log.info(
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )


def body_limit(path: str) -> int:
    if path.startswith(ingest_paths()):
        return settings.PLATFORM_INGEST_MAX_BODY_BYTES
    return settings.PLATFORM_MAX_BODY_BYTES


class RequestContextMiddleware:
    """Tags the request with ids for logs, refuses oversized bodies (413), counts the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        with request_context(request.META) as request_id:
            request.request_id = request_id
            response = self._refuse_body(request) or self.get_response(request)
            elapsed = time.perf_counter() - started
            if access_log.isEnabledFor(logging.INFO):  # PLATFORM_ACCESS_LOG (on in ``platform run``)
                _log_access(request, response, elapsed)
        response["X-Request-ID"] = request_id
        match = getattr(request, "resolver_match", None)
        route = match.route if match else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, response.status_code).inc()
        HTTP_LATENCY.labels(route).observe(elapsed)
        if observers.active():
            observers.notify(
                observers.Observed(
                    request.method,
                    request.path,
                    route,
                    response.status_code,
                    time.time() - elapsed,
                    elapsed,
                    request.META,
                )
            )
        return response

    @staticmethod
    def _refuse_body(request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        refusal = body_refusal(
            meta.get("CONTENT_LENGTH"), meta.get("HTTP_TRANSFER_ENCODING", ""), request.path
        )
        return JsonResponse(refusal[1], status=refusal[0]) if refusal is not None else None


def body_refusal(content_length: str | None, transfer_encoding: str, path: str) -> tuple[int, dict] | None:
    """The answer (status, error body) to a request whose headers alone refuse its body: chunked
    without a Content-Length (411: Django and DRF read no body without the length, so it would
    be dropped unread and the request answered as if it had none), a length that is no number
    (400), or one over the path's limit (413)."""
    if not content_length and "chunked" in transfer_encoding.lower():
        return 411, error_body("length_required", "Send the body with a Content-Length header.")
    try:
        length = int(content_length or "0")
    except ValueError:
        return 400, error_body("invalid_content_length", "Content-Length is not a number.")
    limit = body_limit(path)
    if length > limit:
        details = {"limit_bytes": limit, "received_bytes": length}
        return 413, error_body("request_too_large", "The request body is too large.", details)
    return None


def refuse_bodies_early(app: Callable) -> Callable:
    """ASGI: :func:`body_refusal` before Django's ASGI handler, which reads a whole body (into a
    temporary file) before any middleware runs: an oversized upload is refused unread."""

    async def guarded(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or ())
            length = headers.get(b"content-length")
            refusal = body_refusal(
                length.decode("latin-1") if length is not None else None,
                headers.get(b"transfer-encoding", b"").decode("latin-1"),
                scope.get("path", ""),
            )
            if refusal is not None:
                request_id = request_id_for(headers.get(b"x-request-id", b"").decode("latin-1"))
                body = json.dumps(refusal[1]).encode()
                response_headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                    (b"connection", b"close"),  # the body is left unread
                ]
                await send({"type": "http.response.start", "status": refusal[0], "headers": response_headers})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded


def is_credentialed_api_call(request: HttpRequest) -> bool:
    """An API or OAuth2 call carrying its own credentials (a bearer token, a client's Basic auth).

    It needs no session, CSRF check, messages or framing header: those serve browsers, whose
    API calls carry a session cookie and no Authorization header.
    """
    return "HTTP_AUTHORIZATION" in request.META and request.path_info.startswith(
        settings.PLATFORM_API_PREFIXES
    )


class _SkipForCredentialedAPI:
    """Mixin: pass credentialed API calls straight through (they are most of the platform's traffic).

    Browser requests (dashboards, admin, session-authenticated API calls) go through the whole
    middleware as usual; subclassing keeps Django's checks for these middlewares satisfied.
    """

    def __call__(self, request: HttpRequest):
        if is_credentialed_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_SkipForCredentialedAPI, sessions_middleware.SessionMiddleware):
    pass


class CsrfViewMiddleware(_SkipForCredentialedAPI, csrf_middleware.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(_SkipForCredentialedAPI, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_SkipForCredentialedAPI, messages_middleware.MessageMiddleware):
    pass


class XFrameOptionsMiddleware(_SkipForCredentialedAPI, clickjacking_middleware.XFrameOptionsMiddleware):
    pass
