"""The hot path: the platform's most frequent calls, answered beneath Django's request stack.

Services make four calls far more often than any other: read their resolved config, look up a
service, renew their node's heartbeat, publish an event.  Through Django and DRF such a call
costs about 0.45 ms of CPU on a small machine before the view does anything (URL resolving,
nine middlewares, the request signals, DRF's request wrapping, content negotiation, the
response object), while a read's own work is a few dictionary lookups in this process's caches.
On a two-core host that CPU is both the throughput ceiling and, through the GIL, the tail latency.

:class:`HotPath` is a WSGI wrapper in front of the Django application.  A :class:`HotRoute`
names a method, a path pattern, the scope it needs and a handler (``config_app.hot``,
``discovery_app.hot``, ``event_app.hot``).  The handler answers only the plain, warm, successful
case, and returns None for anything else: a token this process has not validated yet, a document
its caches do not hold, a query parameter it does not handle, a policy that does not allow the
call (or is not compiled yet), invalid input, an error of any kind.  The request then goes
through Django exactly as if the hot path did not exist.  So every refusal, every error body and
every cold read is the full stack's, and a hot answer only repeats what the full stack would
have answered (the tests compare the two).

A hot answer keeps what the full stack does for such a call: the bearer token (this process's
token cache, revocations polled as usual), the scope and the policy decision, the per-client
rate limit (the same counters; a throttled call falls through, so its refusal counts it a
second time), the body size limit, the ``X-Request-ID`` header, the security headers of Django's
``SecurityMiddleware``, and the request metrics under the same route labels.  The request thread
never queries the database (a publish is written by the group writer's thread), so it holds no
connection.  An ``Accept`` other than JSON, a chunked body, cookie (session) authentication,
``HEAD``, or plain HTTP when ``SECURE_SSL_REDIRECT`` is on, all go to Django.
``PLATFORM_HOT_PATH=false`` turns it off.
"""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.http import parse_etags
from rest_framework.settings import api_settings

from auth_app.access import TokenInfo, cached_bearer, warm_decision
from platformsite import observers
from platformsite.api.permissions import required_scope
from platformsite.api.renderers import json_bytes
from platformsite.api.throttling import wait_seconds
from platformsite.cache import CACHE_DOWN
from platformsite.metrics import HTTP_LATENCY, HTTP_REQUESTS
from platformsite.middleware import body_limit, request_context

log = logging.getLogger(__name__)

JSON = "application/json"
_ACCEPTED = {None, "", "*/*", JSON}
_STATUS_LINES = {200: "200 OK", 201: "201 Created", 304: "304 Not Modified"}


@dataclass(frozen=True, slots=True)
class Answer:
    """A hot route's response: a status the hot path knows, a body and extra headers."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = JSON

    @classmethod
    def json(cls, data: Any, *headers: tuple[str, str], status: int = 200) -> Answer:
        """``data`` encoded as DRF's ``JSONRenderer`` would."""
        return cls(status, json_bytes(data), headers)

    @classmethod
    def not_modified(cls, *headers: tuple[str, str]) -> Answer:
        return cls(304, b"", headers, f"text/html; charset={settings.DEFAULT_CHARSET}")


def not_modified(etag: str) -> HttpResponse:
    """A full-stack view's 304: no body, and the ETag a 200 would carry (RFC 9110 §15.4.5), so
    that a cache refreshes the stored answer's validator."""
    response = HttpResponse(status=304)
    response["ETag"] = etag
    return response


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's If-None-Match: a list of entity tags (Django's ``parse_etags``) compared weakly
    (``W/"7-ab"`` matches ``"7-ab"``, as a proxy that compresses the answer sends it back), or
    ``*``, which matches any current representation (§13.1.2): a GET of a resource that exists is
    304 (one that does not is the usual 404, answered before this is asked)."""
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return tags == ["*"] or any(tag.removeprefix("W/") == etag for tag in tags)


@dataclass(slots=True)
class HotRequest:
    """What a handler sees: the WSGI environ, the path's groups and the caller's token."""

    environ: dict[str, Any]
    args: dict[str, str]
    token: TokenInfo | None  # None on a public route
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), "")

    def headers(self) -> dict[str, str]:
        """Every request header, by lower-case name (``content-type``, ``ce-id``...)."""
        found = {
            name[5:].replace("_", "-").lower(): value
            for name, value in self.environ.items()
            if name.startswith("HTTP_")
        }
        if content_type := self.environ.get("CONTENT_TYPE"):
            found["content-type"] = content_type
        return found

    def hand_over(self, key: str, value: Any) -> None:
        """Leave ``value`` for the full view, should this request fall through to it.

        A write route hands over what makes its write idempotent (the events with the ids they
        were given), so a fall-through after a failed write repeats nothing: the view writes the
        same records, which the store then recognises as duplicates.  Read it with
        :func:`handed_over`.
        """
        self.environ[HANDED_OVER + key] = value

    def allows(self, resource: str, action: str) -> bool:
        """The policy allows it, decided without a database query (False when that needs one)."""
        if self.token is None:
            return False
        decision = warm_decision(self.token, resource=resource, action=action)
        return decision is not None and decision.allowed


Handler = Callable[[HotRequest], Answer | None]

HANDED_OVER = "platform.hot."


def handed_over(request: HttpRequest, key: str) -> Any:
    """What the hot route handed over to this (fallen-through) request, or None."""
    return request.META.get(HANDED_OVER + key)


@dataclass(frozen=True)
class HotRoute:
    """A call the hot path may answer: ``method`` on the URL named ``url_name``.

    The route's path pattern, its metrics label (the Django route), the ``Allow`` header and the
    scope it needs are not written here: :func:`bind` reads them from the URLconf and the DRF
    view behind ``url_name``, so the hot path answers exactly the calls the view answers.
    ``query`` matches the whole query string (routes that take parameters name them in groups).
    A route with ``max_body`` takes requests with a body of a declared length up to that many
    bytes (larger ones are left to Django, which would read them just as well); the others only
    requests without a body.  A route that writes must be idempotent on fall-through: see
    :meth:`HotRequest.hand_over`.  A ``public`` route serves a view without authentication
    (its URL is its own secret, as the monitor's job pings): no bearer token is read and no client
    rate limit counted; its handler applies the view's own limits.
    """

    method: str
    url_name: str
    handler: Handler
    query: re.Pattern[str] = field(default=re.compile(r"\Z"))
    max_body: int = 0
    public: bool = False
    # Read from the URLconf by bind():
    pattern: re.Pattern[str] | None = None
    route: str = ""
    allow: str = ""
    scope: str = ""


def bind(route: HotRoute) -> HotRoute:
    """``route`` with its pattern, route label, ``Allow`` header and scope read from the URLconf."""
    found = _find_url(get_resolver().url_patterns, route.url_name.split(":"), "", "")
    if found is None:
        raise ImproperlyConfigured(f"hot route {route.url_name!r}: no such URL is served")
    regex, label, callback = found
    view = callback.cls(**callback.view_initkwargs)
    view.setup(HttpRequest())  # as Django does per request: HEAD answered where GET is
    return replace(
        route,
        pattern=re.compile("/" + regex),
        route=label,
        allow=", ".join(view.allowed_methods),
        scope="" if route.public else required_scope(SimpleNamespace(method=route.method), view),
    )


def _find_url(patterns: list[Any], names: list[str], regex: str, label: str) -> tuple[str, str, Any] | None:
    for pattern in patterns:
        part = pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            if pattern.namespace and (len(names) < 2 or pattern.namespace != names[0]):
                continue
            rest = names[1:] if pattern.namespace else names
            found = _find_url(pattern.url_patterns, rest, regex + part, label + str(pattern.pattern))
            if found is not None:
                return found
        elif isinstance(pattern, URLPattern) and names == [pattern.name]:
            return regex + part.removesuffix("\\Z") + "\\Z", label + str(pattern.pattern), pattern.callback
    return None


class HotPath:
    """WSGI wrapper: answers warm calls of ``routes`` itself, passes everything else to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], routes: Iterable[HotRoute]) -> None:
        self.app = app
        self.routes: dict[str, list[HotRoute]] = {}
        for route in routes:
            self.routes.setdefault(route.method, []).append(bind(route))
        self.security_headers = {secure: _security_headers(secure) for secure in (False, True)}
        self.vary = (("Vary", "Accept"),) if len(api_settings.DEFAULT_RENDERER_CLASSES) > 1 else ()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        routes = self.routes.get(environ["REQUEST_METHOD"])
        matched = _match(environ.get("PATH_INFO", ""), routes) if routes else None
        if matched is None:  # most requests: no request id made here, Django's middleware makes it
            return self.app(environ, start_response)
        with request_context(environ) as request_id:
            found = self.answer(environ, *matched)
        if found is None:
            return self.app(environ, start_response)
        route, answer, secure = found
        headers = [
            ("Content-Type", answer.content_type),
            *answer.headers,
            ("Allow", route.allow),
            *self.vary,
            *self.security_headers[secure],
            ("X-Request-ID", request_id),
        ]
        start_response(_STATUS_LINES[answer.status], headers)
        elapsed = time.perf_counter() - started
        HTTP_REQUESTS.labels(route.method, route.route, answer.status).inc()
        HTTP_LATENCY.labels(route.route).observe(elapsed)
        if observers.active():
            observers.notify(
                observers.Observed(
                    route.method,
                    environ.get("PATH_INFO", ""),
                    route.route,
                    answer.status,
                    time.time() - elapsed,
                    elapsed,
                    environ,
                )
            )
        return [answer.body]

    def answer(
        self, environ: dict[str, Any], route: HotRoute, match: re.Match[str]
    ) -> tuple[HotRoute, Answer, bool] | None:
        """The route's answer, with whether the request is secure; None to ask Django."""
        query = route.query.fullmatch(environ.get("QUERY_STRING", ""))
        if query is None or environ.get("HTTP_ACCEPT") not in _ACCEPTED:
            return None
        secure = _is_secure(environ)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return None
        length = environ.get("CONTENT_LENGTH") or "0"
        if "HTTP_TRANSFER_ENCODING" in environ or not (length.isascii() and length.isdigit()):
            return None
        size = int(length)
        limit = min(route.max_body, body_limit(environ.get("PATH_INFO", "")))
        if size > limit or (route.max_body and not size):
            return None
        try:
            token = None if route.public else _token(environ)
            if not route.public and (token is None or not token.has_scope(route.scope)):
                return None
            if token is not None and wait_seconds("client", token.client_id) is not None:
                return None
        except CACHE_DOWN:  # an outage: the full stack answers it (a 503, logged there once)
            return None
        except Exception:  # the full stack answers (and reports) it
            log.warning(
                "hot path: %s %s: token or rate limit failed; passed to Django",
                route.method,
                route.route,
                exc_info=True,
            )
            return None
        body = b""
        if size:
            body = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(body)  # for Django, if the handler passes
        args = {**match.groupdict(), **{k: v for k, v in query.groupdict().items() if v is not None}}
        try:
            answer = route.handler(HotRequest(environ, args, token, body))
        except CACHE_DOWN:  # an outage: the full stack answers it (a 503, logged there once)
            return None
        except Exception:  # the full stack answers (and reports) it
            log.exception("hot path: %s %s failed; passed to Django", route.method, route.route)
            return None
        if answer is None:
            return None
        return route, answer, secure


def _match(path: str, routes: list[HotRoute]) -> tuple[HotRoute, re.Match[str]] | None:
    for route in routes:
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route, match
    return None


def _token(environ: dict[str, Any]) -> TokenInfo | None:
    scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials or len(credentials) > 4096:
        return None
    return cached_bearer(credentials.strip())


def _is_secure(environ: dict[str, Any]) -> bool:
    """``HttpRequest.is_secure()`` for a WSGI environ."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


class _Probe(HttpRequest):
    def __init__(self, secure: bool) -> None:
        super().__init__()
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


def _security_headers(secure: bool) -> tuple[tuple[str, str], ...]:
    """The headers Django's ``SecurityMiddleware`` adds to a response, as settings configure it."""
    response = SecurityMiddleware(lambda request: HttpResponse()).process_response(
        _Probe(secure), HttpResponse()
    )
    return tuple((name, value) for name, value in response.items() if name != "Content-Type")


def with_hot_path(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """``app`` behind the hot path (if enabled), with the hot routes the served services declare."""
    if not settings.PLATFORM_HOT_PATH:
        return app
    from platformsite.services import hot_routes  # the routes import the apps' views: after setup

    return HotPath(app, hot_routes())
