"""One OpenTelemetry server span per request, made directly with the OpenTelemetry API.

:func:`wsgi` and :func:`asgi` wrap an app so each HTTP request is a ``SERVER`` span of the
current tracer provider (``platform_client.trace.setup`` configures one exporting to the
platform).  They replace opentelemetry-instrumentation-wsgi/-asgi, whose per-request attribute
machinery cost about 95 µs a request, more than many handlers: here a request costs a span's
creation and end, a context attach, and these attributes only, the ones the HTTP semantic
conventions require of a server span:

- ``http.request.method`` (``_OTHER`` for a method outside RFC 9110 and PATCH, the original in
  ``http.request.method_original``), ``url.path``, ``url.scheme``, ``url.query`` when there is one;
- ``http.response.status_code`` once the response started; ``http.route`` when ``route`` is
  given (a function of the WSGI environ / ASGI scope answering the matched route template);
- ``error.type`` (the status code of a 5xx, or the exception's class) with the span's status
  set to ERROR.

The span is named ``"{method} {route or path}"``.  The parent comes from the W3C ``traceparent``
header (and ``tracestate``), parsed here; a request that has none but carries B3 headers is read by
the global propagator (``trace.setup`` installs W3C + B3).  Sampling is the tracer provider's
sampler: ``trace.setup`` uses ``ParentBased(TraceIdRatioBased(sample_ratio))``, every request by
default, and an unsampled request costs only a non-recording span.  Spans are exported by the
provider's span processor: ``trace.setup``'s ``BatchSpanProcessor`` queues each ended span and
exports batches from its own thread, never on the request's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["asgi", "parent_context", "wsgi"]

TRACER_NAME = "platform_client.middleware"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_EMPTY: Any = None


def _load() -> None:
    """Import OpenTelemetry (the ``otel`` extra) on first use: the module imports without it."""
    global _EMPTY, otel_context, otel_trace, propagate
    global NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState
    if _EMPTY is not None:
        return
    from opentelemetry import context as otel_context
    from opentelemetry import propagate
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import (
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        StatusCode,
        TraceFlags,
        TraceState,
    )

    _EMPTY = otel_context.Context()


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Any:
    """The remote parent of a W3C ``traceparent`` header as a context, or None when it is absent
    or invalid (then the span starts a new trace, as the W3C spec asks)."""
    _load()
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_hex == "0" * 32 or span_hex == "0" * 16:
        return None
    state = None
    if tracestate:
        try:
            state = TraceState.from_header([tracestate])
        except ValueError:
            state = None
    parent = SpanContext(
        int(trace_hex, 16),
        int(span_hex, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & TraceFlags.SAMPLED),
        trace_state=state,
    )
    return otel_trace.set_span_in_context(NonRecordingSpan(parent), _EMPTY)


def _attributes(method: str, path: str, scheme: str, query: str) -> tuple[str, dict[str, Any]]:
    attributes: dict[str, Any] = {"url.path": path, "url.scheme": scheme}
    if method in METHODS:
        attributes["http.request.method"] = method
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method[:64]
        method = "HTTP"
    if query:
        attributes["url.query"] = query
    return method, attributes


def _finish(span: Any, status: int | None, error: BaseException | None = None) -> None:
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:200])
    elif status is not None and status >= 500:
        span.set_attribute("error.type", str(status))
        span.set_status(StatusCode.ERROR)
    span.end()


class _WSGIBody:
    """A streamed response body: the span stays current while it is iterated, ends at close."""

    def __init__(self, body: Iterable[bytes], span: Any, status: list[int]) -> None:
        self.body, self.span, self.status = body, span, status

    def __iter__(self) -> Iterator[bytes]:
        token = otel_context.attach(otel_trace.set_span_in_context(self.span))
        try:
            yield from self.body
        except Exception as exc:
            _finish(self.span, self.status[-1] if self.status else None, exc)
            self.span = None
            raise
        finally:
            otel_context.detach(token)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            if self.span is not None:
                _finish(self.span, self.status[-1] if self.status else None)
                self.span = None


def start_wsgi_span(
    tracer: Any, environ: dict, route: Callable[[dict], str | None] | None
) -> tuple[Any, Any]:
    """The request's server span (started, not current yet) and its parent context."""
    parent = parent_context(environ.get("HTTP_TRACEPARENT"), environ.get("HTTP_TRACESTATE"))
    if parent is None:
        parent = _EMPTY
        if "HTTP_B3" in environ or "HTTP_X_B3_TRACEID" in environ:
            parent = propagate.extract(environ, context=_EMPTY, getter=_ENVIRON_GETTER)
    method, attributes = _attributes(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("PATH_INFO", "") or "/",
        environ.get("wsgi.url_scheme", "http"),
        environ.get("QUERY_STRING", ""),
    )
    target = attributes["url.path"]
    if route is not None:
        matched = route(environ)
        if matched:
            attributes["http.route"] = target = matched
    span = tracer.start_span(
        f"{method} {target}", context=parent, kind=SpanKind.SERVER, attributes=attributes
    )
    return span, parent


def make_current(span: Any, parent: Any) -> Any:
    """Make ``span`` the current span; the token to :func:`restore` with."""
    return otel_context.attach(otel_trace.set_span_in_context(span, parent))


def restore(token: Any) -> None:
    otel_context.detach(token)


def finish(span: Any, status: int | None, error: BaseException | None = None) -> None:
    """End the span with the response's status (and the error that ended it, if one did)."""
    _finish(span, status, error)


def streamed(body: Iterable[bytes], span: Any, status: list[int]) -> Iterable[bytes]:
    """A WSGI body the span outlives: current while iterated, ended at ``close()``."""
    return _WSGIBody(body, span, status)


def tracer(provider: Any = None) -> Any:
    """The middleware's tracer: of ``provider``, else of the global tracer provider."""
    _load()
    return otel_trace.get_tracer(TRACER_NAME, tracer_provider=provider)


class WSGISpan:
    def __init__(
        self, app: Callable, *, route: Callable[[dict], str | None] | None = None, tracer_provider: Any = None
    ) -> None:
        self.app, self.route = app, route
        self.tracer = tracer(tracer_provider)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        span, parent = start_wsgi_span(self.tracer, environ, self.route)
        status: list[int] = []

        def recording_start_response(status_line: str, headers: list, exc_info: Any = None) -> Any:
            status.append(int(status_line[:3]))
            if exc_info:
                return start_response(status_line, headers, exc_info)
            return start_response(status_line, headers)

        token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        try:
            body = self.app(environ, recording_start_response)
        except BaseException as exc:
            _finish(span, status[-1] if status else None, exc)
            raise
        finally:
            otel_context.detach(token)
        if isinstance(body, list | tuple):  # the whole answer is made: the span ends now
            _finish(span, status[-1] if status else None)
            return body
        return _WSGIBody(body, span, status)


class _EnvironGetter:
    """Header lookups in a WSGI environ for the global propagator (B3)."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if value is not None else None

    def keys(self, carrier: dict) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


class _HeadersGetter:
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return [value] if value is not None else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_ENVIRON_GETTER = _EnvironGetter()
_HEADERS_GETTER = _HeadersGetter()


class ASGISpan:
    def __init__(
        self, app: Callable, *, route: Callable[[dict], str | None] | None = None, tracer_provider: Any = None
    ) -> None:
        self.app, self.route = app, route
        self.tracer = tracer(tracer_provider)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = tracestate = None
        b3 = False
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
            elif name in (b"b3", b"x-b3-traceid"):
                b3 = True
        parent = parent_context(traceparent, tracestate)
        if parent is None:
            parent = _EMPTY
            if b3:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                parent = propagate.extract(headers, context=_EMPTY, getter=_HEADERS_GETTER)
        query = scope.get("query_string", b"")
        method, attributes = _attributes(
            scope.get("method", "GET"),
            scope.get("path", "") or "/",
            scope.get("scheme", "http"),
            query.decode("latin-1") if query else "",
        )
        target = attributes["url.path"]
        if self.route is not None:
            route = self.route(scope)
            if route:
                attributes["http.route"] = target = route
        span = self.tracer.start_span(
            f"{method} {target}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        status: list[int] = []

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, recording_send)
        except BaseException as exc:
            _finish(span, status[-1] if status else None, exc)
            raise
        else:
            _finish(span, status[-1] if status else None)
        finally:
            otel_context.detach(token)


def wsgi(
    app: Callable, *, route: Callable[[dict], str | None] | None = None, tracer_provider: Any = None
) -> WSGISpan:
    """``app`` with a server span per request (see the module documentation); spans go to
    ``tracer_provider`` (default: the global one, as ``trace.setup`` sets it)."""
    return WSGISpan(app, route=route, tracer_provider=tracer_provider)


def asgi(
    app: Callable, *, route: Callable[[dict], str | None] | None = None, tracer_provider: Any = None
) -> ASGISpan:
    """The same for an ASGI app (websockets and lifespan pass through untraced)."""
    return ASGISpan(app, route=route, tracer_provider=tracer_provider)
