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
default.  Spans are exported by the provider's span processor: ``trace.setup``'s
``BatchSpanProcessor`` queues each ended span and exports batches from its own thread, never on
the request's.

A request that is not sampled costs only a non-recording span made current (its trace id and a
new span id, so the handler's outgoing calls carry the trace on).  When the provider's sampler is
``ParentBased`` with its default delegates over ``ALWAYS_ON``, ``ALWAYS_OFF`` or
``TraceIdRatioBased`` (OpenTelemetry's default sampler, and what ``trace.setup`` installs), the
decision depends only on the parent's sampled flag and the trace id, so :class:`ServerTracing`
makes it here, before building the span's name and attributes, and makes that span directly: the
same trace id, flags and trace state the SDK's ``start_span`` would give it, for about half the
cost.  A new trace that the ratio samples starts through ``start_span`` with the trace id the
decision was made on.  Any other sampler, id generator or tracer setting goes through
``start_span`` for every request.

Requests for the health and metrics paths (``/healthz``, ``/readyz``, ``/metrics``, or
``exempt_paths``) are not traced: a probe every few seconds would fill the trace store with
one-span traces.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from platform_client.middleware import EXEMPT, status_code

__all__ = ["ServerTracing", "asgi", "parent_context", "traceparent_ids", "wsgi"]

TRACER_NAME = "platform_client.middleware"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
#: TraceIdRatioBased decides on the trace id's low 64 bits.
_LOW_64 = (1 << 64) - 1
log = logging.getLogger(__name__)
_EMPTY: Any = None
#: One look at a tracer at a time: the first requests of a threaded server arrive together.
_RESOLVING = threading.Lock()


def _load() -> None:
    """Import OpenTelemetry (the ``otel`` extra) on first use: the module imports without it."""
    global _EMPTY, otel_context, otel_trace, propagate
    global NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState
    global _RANDOM, _NOT_SAMPLED, _NOT_SAMPLED_RANDOM
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

    _RANDOM = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)  # W3C Trace Context level 2 (API 1.39+)
    _NOT_SAMPLED, _NOT_SAMPLED_RANDOM = TraceFlags(0), TraceFlags(_RANDOM)
    _bind_fast_context()
    _EMPTY = otel_context.Context()


def _bind_fast_context() -> None:
    """How an unsampled request's span is made current: straight through the context variable
    of OpenTelemetry's default runtime context when that is the one in use (a third of the
    cost of ``attach(set_span_in_context(...))``), else through the public API."""
    global _attach, _reset, _span_only, _NO_STATE
    from opentelemetry.trace.span import DEFAULT_TRACE_STATE as _NO_STATE

    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    key = getattr(otel_trace.propagation, "_SPAN_KEY", None)
    if type(runtime).__name__ == "ContextVarsRuntimeContext" and variable is not None and key is not None:
        _attach, _reset = variable.set, variable.reset
        context_type = otel_context.Context

        def _span_only(span: Any) -> Any:
            return context_type({key: span})  # what set_span_in_context(span, Context()) gives
    else:
        _attach, _reset = otel_context.attach, otel_context.detach

        def _span_only(span: Any) -> Any:
            return otel_trace.set_span_in_context(span, otel_context.Context())


def traceparent_ids(traceparent: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags), in hex, of a valid W3C ``traceparent``; None when it is
    absent or invalid (version ``ff``, extra fields after version 00, an all-zero id)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_hex, span_hex, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_hex == "0" * 32 or span_hex == "0" * 16:
        return None
    return trace_hex, span_hex, flags


def remote_parent(traceparent: str | None, tracestate: str | None = None) -> Any:
    """The remote parent of a W3C ``traceparent`` header as a ``SpanContext``, or None when it is
    absent or invalid (then the span starts a new trace, as the W3C spec asks)."""
    ids = traceparent_ids(traceparent)
    if ids is None:
        return None
    trace_hex, span_hex, flags = ids
    state = None
    if tracestate:
        try:
            state = TraceState.from_header([tracestate])
        except ValueError:
            state = None
    return SpanContext(
        int(trace_hex, 16),
        int(span_hex, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(flags, 16) & (TraceFlags.SAMPLED | _RANDOM)),  # the flags W3C defines
        trace_state=state,
    )


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Any:
    """:func:`remote_parent` as a context to start a span in, or None."""
    _load()
    remote = remote_parent(traceparent, tracestate)
    return None if remote is None else _parent(remote)


def _parent(remote: Any) -> Any:
    """The context a span with the remote parent ``remote`` (or none) starts in."""
    if remote is None:
        return _EMPTY
    return otel_trace.set_span_in_context(NonRecordingSpan(remote), _EMPTY)


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


class _PresetTraceIds:
    """The tracer's id generator, except that the next trace id of this thread can be given: a new
    trace that :class:`ServerTracing` decided to sample starts with the trace id it decided on."""

    def __init__(self, generator: Any) -> None:
        self.generator, self.local = generator, threading.local()

    def generate_trace_id(self) -> int:
        preset = getattr(self.local, "trace_id", None)
        if preset is None:
            return self.generator.generate_trace_id()
        self.local.trace_id = None
        return preset

    def generate_span_id(self) -> int:
        return self.generator.generate_span_id()

    def is_trace_id_random(self) -> bool:
        is_random = getattr(self.generator, "is_trace_id_random", None)
        return bool(is_random()) if is_random is not None else False


def _root_bound(sampler: Any) -> int | None:
    """The bound a new trace id's low 64 bits must stay under to be sampled, when ``sampler``
    decides on the parent's sampled flag and the trace id only (see the module documentation);
    else None."""
    from opentelemetry.sdk.trace import sampling

    if not isinstance(sampler, sampling.ParentBased):
        return None
    delegates = {
        "_remote_parent_sampled": sampling.ALWAYS_ON,
        "_remote_parent_not_sampled": sampling.ALWAYS_OFF,
        "_local_parent_sampled": sampling.ALWAYS_ON,
        "_local_parent_not_sampled": sampling.ALWAYS_OFF,
    }
    if any(getattr(sampler, name, None) is not default for name, default in delegates.items()):
        return None
    root = getattr(sampler, "_root", None)
    if root is sampling.ALWAYS_ON:
        return 1 << 64
    if root is sampling.ALWAYS_OFF:
        return 0
    if type(root) is sampling.TraceIdRatioBased and root.TRACE_ID_LIMIT == _LOW_64:
        return int(root.bound)
    return None


class _Fast(NamedTuple):
    """How :class:`ServerTracing` decides and makes an unsampled span itself."""

    bound: int  # a new trace is sampled when its id's low 64 bits are under it
    ids: _PresetTraceIds
    enabled: Callable[[], bool] | None  # the tracer's own on/off switch, when it has one
    trace_id: Callable[[], int]
    span_id: Callable[[], int]
    root_flags: Any  # the TraceFlags of a new unsampled trace


def _random_id(bits: int) -> Callable[[], int]:
    """RandomIdGenerator's ids, without its method calls: random bits, never all zero."""
    getrandbits = random.getrandbits

    def new_id() -> int:
        while True:
            value = getrandbits(bits)
            if value:
                return value

    return new_id


class ServerTracing:
    """Starts and ends a middleware's server spans (``provider``: default, the global one)."""

    def __init__(self, provider: Any = None) -> None:
        _load()
        self.tracer = otel_trace.get_tracer(TRACER_NAME, tracer_provider=provider)
        #: A _Fast when the sampling decision is made here; False when never; None until an SDK
        #: tracer provider is there to look at.
        self._fast: _Fast | bool | None = None

    def _resolve(self) -> Any:
        with _RESOLVING:
            if self._fast is None:
                self._fast = self._look()
            return self._fast

    def _look(self) -> Any:
        """What :meth:`_resolve` finds: a _Fast, False, or None (no SDK provider yet)."""
        from opentelemetry.sdk.trace import Tracer as SDKTracer
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        tracer = self.tracer
        if isinstance(tracer, otel_trace.ProxyTracer):
            tracer = tracer._tracer  # the global provider's tracer, once there is one
            if not isinstance(tracer, SDKTracer):
                return None  # no SDK provider yet: look again at the next request
        fast: Any = False
        metrics = getattr(tracer, "_tracer_metrics", None)
        internal_metrics = metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics"
        bound = _root_bound(getattr(tracer, "sampler", None)) if isinstance(tracer, SDKTracer) else None
        if bound is not None and not internal_metrics and hasattr(tracer, "id_generator"):
            ids = tracer.id_generator
            if not isinstance(ids, _PresetTraceIds):
                ids = tracer.id_generator = _PresetTraceIds(ids)
            plain = type(ids.generator) is RandomIdGenerator
            fast = _Fast(
                bound=bound,
                ids=ids,
                enabled=getattr(tracer, "_is_enabled", None),
                trace_id=_random_id(128) if plain else ids.generator.generate_trace_id,
                span_id=_random_id(64) if plain else ids.generator.generate_span_id,
                root_flags=TraceFlags(_RANDOM if ids.is_trace_id_random() else 0),
            )
        return fast

    def _unsampled(self, remote: Any) -> tuple[Any, Any] | None:
        """The request's span when it is not sampled, made current, and the token to detach it
        with (None: it is sampled, or the decision is the SDK's); a sampled new trace's id is
        preset for ``start_span``."""
        fast = self._fast if self._fast is not None else self._resolve()
        if not fast:
            return None
        if fast.enabled is not None and not fast.enabled():
            return None
        if remote is not None:
            if remote.trace_flags & TraceFlags.SAMPLED:
                return None
            trace_id, state = remote.trace_id, remote.trace_state
            flags = _NOT_SAMPLED_RANDOM if remote.trace_flags & _RANDOM else _NOT_SAMPLED
        else:
            trace_id = fast.trace_id()
            if trace_id & _LOW_64 < fast.bound:
                fast.ids.local.trace_id = trace_id
                return None
            flags, state = fast.root_flags, None
        span_id = fast.span_id()
        # SpanContext(trace_id, span_id, False, flags, state) without its checks: the trace id is
        # a valid parent's or a new non-zero one
        valid = 0 < span_id <= _LOW_64
        span = NonRecordingSpan(
            tuple.__new__(SpanContext, (trace_id, span_id, False, flags, state or _NO_STATE, valid))
        )
        return span, _attach(_span_only(span))

    def _begin(self, remote: Any, b3: Any) -> tuple[tuple[Any, Any] | None, Any]:
        """``(started, None)`` for a request not sampled (its span current), else ``(None, the
        context to record its span in)``: ``b3``'s when the parent came from B3 headers."""
        if b3 is not None:
            return None, b3
        started = self._unsampled(remote)
        return (started, None) if started is not None else (None, _parent(remote))

    def _recorded(self, parent: Any, fields: tuple[str, str, str, str], route: str | None) -> tuple[Any, Any]:
        """A span through the tracer's ``start_span`` (recorded, unless the SDK decides not to),
        current; ``fields``: method, path, scheme, query."""
        method, attributes = _attributes(*fields)
        target = attributes["url.path"]
        if route:
            attributes["http.route"] = target = route
        try:
            span = self.tracer.start_span(
                f"{method} {target}", context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
        finally:
            fast = self._fast
            if fast:
                fast.ids.local.trace_id = None  # never left for another span
        return span, otel_context.attach(otel_trace.set_span_in_context(span, parent))

    def start_wsgi(self, environ: dict, route: Callable[[dict], str | None] | None) -> tuple[Any, Any]:
        """The request's span, started and current, and the token to :meth:`detach` it with."""
        traceparent = environ.get("HTTP_TRACEPARENT")
        remote = remote_parent(traceparent, environ.get("HTTP_TRACESTATE")) if traceparent else None
        b3 = None
        if remote is None and ("HTTP_B3" in environ or "HTTP_X_B3_TRACEID" in environ):
            b3 = propagate.extract(environ, context=_EMPTY, getter=_ENVIRON_GETTER)
        started, parent = self._begin(remote, b3)
        if started is not None:
            return started
        fields = (
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "") or "/",
            environ.get("wsgi.url_scheme", "http"),
            environ.get("QUERY_STRING", ""),
        )
        return self._recorded(parent, fields, route(environ) if route is not None else None)

    def start_asgi(self, scope: dict, route: Callable[[dict], str | None] | None) -> tuple[Any, Any]:
        """The same for an ASGI HTTP scope."""
        traceparent = tracestate = None
        b3 = False
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
            elif name in (b"b3", b"x-b3-traceid"):
                b3 = True
        remote = remote_parent(traceparent, tracestate)
        b3_parent = None
        if remote is None and b3:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            b3_parent = propagate.extract(headers, context=_EMPTY, getter=_HEADERS_GETTER)
        started, parent = self._begin(remote, b3_parent)
        if started is not None:
            return started
        query = scope.get("query_string", b"")
        fields = (
            scope.get("method", "GET"),
            scope.get("path", "") or "/",
            scope.get("scheme", "http"),
            query.decode("latin-1") if query else "",
        )
        return self._recorded(parent, fields, route(scope) if route is not None else None)

    @staticmethod
    def detach(token: Any) -> None:
        """The span is no longer current (it may still be running: a streamed body)."""
        try:
            _reset(token)
        except Exception:  # as OpenTelemetry's detach: a token of another context is logged
            log.exception("Failed to detach context")

    @staticmethod
    def finish(span: Any, status: int | str | None, error: BaseException | None = None) -> None:
        """End the span with the response's status, a code or a WSGI status line (read only if the
        span is recorded), and the error that ended it, if one did."""
        if span.is_recording():
            _finish(span, status_code(status), error)

    @staticmethod
    def enter(span: Any) -> Any:
        """Make ``span`` current again (a streamed body being iterated); :meth:`detach` the token."""
        return _attach(otel_trace.set_span_in_context(span))


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
        self,
        app: Callable,
        *,
        route: Callable[[dict], str | None] | None = None,
        tracer_provider: Any = None,
        exempt_paths: Iterable[str] = EXEMPT,
    ) -> None:
        self.app, self.route = app, route
        self.exempt = frozenset(exempt_paths)
        self.tracing = ServerTracing(tracer_provider)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        span, token = self.tracing.start_asgi(scope, self.route)
        status: list[int] = []

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except BaseException as exc:
            self.tracing.finish(span, status[-1] if status else None, exc)
            raise
        else:
            self.tracing.finish(span, status[-1] if status else None)
        finally:
            self.tracing.detach(token)


def wsgi(
    app: Callable,
    *,
    route: Callable[[dict], str | None] | None = None,
    tracer_provider: Any = None,
    exempt_paths: Iterable[str] = EXEMPT,
) -> Callable:
    """``app`` with a server span per request (see the module documentation); spans go to
    ``tracer_provider`` (default: the global one, as ``trace.setup`` sets it); requests for
    ``exempt_paths`` (health and metrics) are not traced.  It is the SDK's middleware
    (:func:`platform_client.middleware.wsgi`) with tracing only."""
    from platform_client.middleware import wsgi as middleware

    return middleware(
        app, trace=True, route=route, tracer_provider=tracer_provider, exempt_paths=exempt_paths
    )


def asgi(
    app: Callable,
    *,
    route: Callable[[dict], str | None] | None = None,
    tracer_provider: Any = None,
    exempt_paths: Iterable[str] = EXEMPT,
) -> ASGISpan:
    """The same for an ASGI app (websockets, lifespan and ``exempt_paths`` pass through untraced)."""
    return ASGISpan(app, route=route, tracer_provider=tracer_provider, exempt_paths=exempt_paths)
