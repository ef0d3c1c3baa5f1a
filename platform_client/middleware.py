"""One server middleware for WSGI and ASGI apps: authenticates, traces, and records the
monitor's endpoint stats and request metrics, in one place.

```python
from platform_client import Platform
from platform_client.middleware import wsgi

p = Platform.from_env()
application = wsgi(flask_app.wsgi_app, verifier=p.auth.verifier, scopes=["orders:read"], monitor=p.monitor)
# or p.wsgi(app, scopes=[...]) / p.asgi(app, ...) with the platform's own verifier and monitor
```

Order, outermost first: the OpenTelemetry server span (``trace=True``, needs the ``otel``
extra; :mod:`platform_client.server_span`), the stats (so refused calls are counted too), then
authentication: a missing, forged or expired token is 401, a missing scope 403, in the
platform's error shape; the claims are in
``environ["platform.claims"]`` / ``scope["platform.claims"]``.  ``exempt_paths`` (health and
metrics) skip authentication and tracing (a probe every few seconds would fill the trace store
with one-span traces); they are still counted.

Verified tokens are remembered (up to ``cache_size``, until they expire): a caller sends the same
token until it is refreshed, and an RSA signature check per request would cost more than the
handler.  Scopes are checked on every request.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from platform_client.auth import ASGIAuthMiddleware, AuthError, JWKSVerifier, bearer_token

__all__ = ["CachingVerifier", "RequestStats", "asgi", "wsgi"]

log = logging.getLogger(__name__)
perf_counter = time.perf_counter
#: Every RequestStats, so a forked worker restarts their threads (threads do not survive a fork).
_RECORDERS: weakref.WeakSet = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [recorder._forked() for recorder in list(_RECORDERS)])

EXEMPT = ("/healthz", "/readyz", "/metrics")


class CachingVerifier:
    """A :class:`JWKSVerifier` that verifies each token's signature once while it is valid."""

    def __init__(self, verifier: JWKSVerifier, *, cache_size: int = 10_000) -> None:
        self.verifier = verifier
        self.cache_size = cache_size
        #: token -> (claims, the time it stops being accepted, the scopes it grants)
        self._cache: OrderedDict[str, tuple[dict[str, Any], float, frozenset[str]]] = OrderedDict()

    def verify(self, token: str, *, scopes: Iterable[str] = ()) -> dict[str, Any]:
        entry = self._cache.get(token)
        if entry is None or entry[1] < time.time():
            claims = self.verifier.verify(token)  # raises on a bad token; never cached then
            granted = frozenset(str(claims.get("scope", "")).split())
            entry = (claims, float(claims["exp"]) + self.verifier.leeway, granted)
            self._cache[token] = entry
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        claims, _, granted = entry
        if scopes and "admin" not in granted:
            missing = set(scopes) - granted
            if missing:
                raise AuthError(
                    "insufficient_scope", f"This call needs the scope(s): {', '.join(sorted(missing))}.", 403
                )
        return claims

    def verify_header(self, authorization: str | None, *, scopes: Iterable[str] = ()) -> dict[str, Any]:
        return self.verify(bearer_token(authorization), scopes=scopes)


class RequestStats:
    """Each request's outcome, kept in memory and counted in the background.

    A request costs one append to a queue; a thread counts the queue into the monitor's endpoint
    counts and the ``http_server_duration_seconds{method,status}`` histogram every ``interval``
    seconds, and so do the monitor's report and the metrics' exposition before they read (so
    neither ever misses a request that was answered).
    """

    def __init__(self, monitor: Any, metrics: Any, *, interval: float = 1.0, limit: int = 1_000_000) -> None:
        self.monitor, self.interval = monitor, interval
        self.histogram = (
            metrics.histogram("http_server_duration_seconds", "Requests served.", labels=("method", "status"))
            if metrics is not None
            else None
        )
        #: (endpoint or None: "METHOD path", method, status, seconds, path); the status a code,
        #: a WSGI status line, or None when nothing was answered; the oldest are dropped beyond
        #: ``limit``.
        self.queue: deque[tuple[str | None, str, int | str | None, float, str]] = deque(maxlen=limit)
        self._children: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = False
        _RECORDERS.add(self)
        if monitor is not None:
            monitor.endpoints.before_take.append(self.flush)
        if metrics is not None:
            metrics.before_render.append(self.flush)

    def record(
        self, endpoint: str | None, method: str, status: int | str | None, seconds: float, path: str = ""
    ) -> None:
        """One request; ``endpoint`` None: ``"METHOD path"``, made when counted."""
        self.queue.append((endpoint, method, status, seconds, path))
        if not self._started:  # the first request of this process (or since a fork)
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stop = threading.Event()
            threading.Thread(target=self._run, name="platform-request-stats", daemon=True).start()

    def _forked(self) -> None:
        """In a forked child: no thread runs yet, nothing of the parent's is counted twice."""
        self._lock = threading.Lock()
        self._started = False
        self.queue.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # never let the thread die: the next flush retries
                log.exception("request stats: flush failed")

    def flush(self) -> int:
        """Count what is queued now; how many requests."""
        with self._lock:
            popleft = self.queue.popleft
            taken = [popleft() for _ in range(len(self.queue))]
        if not taken:
            return 0
        # Grouped by the status as queued (a WSGI status line is parsed once a group, not once a
        # request); None: the app answered nothing, a failure.
        counted: dict[tuple[str | None, str, str, int | str | None], int] = {}
        durations: dict[tuple[str, int | str | None], list[float]] = {}
        for endpoint, method, status, seconds, path in taken:
            key = (endpoint, method, path, status)
            counted[key] = counted.get(key, 0) + 1
            group = durations.get((method, status))
            if group is None:
                group = durations[(method, status)] = []
            group.append(seconds)
        if self.monitor is not None:
            for (endpoint, method, path, status), n in counted.items():
                name = endpoint or f"{method} {path}"
                self.monitor.endpoints.count(
                    name, "errors" if (status_code(status) or 500) >= 500 else "success", n
                )
        if self.histogram is not None:
            for (method, status), seconds in durations.items():
                code = status_code(status) or 500
                child = self._children.get((method, code))
                if child is None:
                    child = self.histogram.labels(method=method[:16], status=str(code))
                    if len(self._children) < 200:
                        self._children[(method, code)] = child
                _observe_all(child, seconds)
        return len(taken)

    def close(self) -> None:
        self._stop.set()
        self.flush()


def _observe_all(metric: Any, values: list[float]) -> None:
    """Observe ``values`` in one histogram child: counted per bucket first, then each bucket and
    the sum incremented once (prometheus-client's ``observe`` takes a lock and walks the buckets
    per value); one by one when statsd needs every value or the client's layout is unknown."""
    prom = metric._prom
    bounds = getattr(prom, "_upper_bounds", None)
    buckets = getattr(prom, "_buckets", None)
    total = getattr(prom, "_sum", None)
    if metric.owner.statsd is not None or bounds is None or buckets is None or total is None:
        for value in values:
            metric.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect_left(bounds, value)] += 1  # the first bucket whose bound is >= value
    total.inc(math.fsum(values))
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)


class _WSGIMiddleware:
    """Span, stats and authentication in one call (one ``start_response`` wrapper, one cache
    lookup for a token already verified); :meth:`serving` is the app."""

    def __init__(
        self,
        app: Callable,
        *,
        verifier: CachingVerifier | None,
        scopes: Iterable[str],
        stats: RequestStats | None,
        trace: bool,
        exempt_paths: Iterable[str],
        endpoint: Callable[[dict], str],
        cache_size: int,
        route: Callable[[dict], str | None] | None,
        tracer_provider: Any = None,
    ) -> None:
        self.app, self.verifier, self.stats, self.endpoint = app, verifier, stats, endpoint
        self.scopes = tuple(scopes)
        self.exempt = frozenset(exempt_paths)
        self.cache_size, self.route = cache_size, route
        #: Authorization header -> (claims, the time it stops being accepted), scopes checked.
        self._accepted: dict[str, tuple[dict[str, Any], float]] = {}
        self.tracing = None
        if trace:
            from platform_client.server_span import ServerTracing

            self.tracing = ServerTracing(tracer_provider)
        #: The monitor's endpoint name is made when counted, unless ``endpoint`` is the caller's.
        self.named = endpoint is not default_endpoint

    def _claims(self, header: str | None) -> dict[str, Any]:
        """Verify a header not accepted yet (or expired) and remember it until it expires."""
        assert self.verifier is not None
        claims = self.verifier.verify_header(header, scopes=self.scopes)  # raises AuthError
        if header is not None:
            if len(self._accepted) >= self.cache_size:
                self._accepted.pop(next(iter(self._accepted)), None)
            valid_for = float(claims["exp"]) + self.verifier.verifier.leeway - time.time()
            self._accepted[header] = (claims, perf_counter() + valid_for)  # on perf_counter's clock
        return claims

    def serving(self) -> Callable:
        """The WSGI app: one function, its settings bound as locals (a request pays no attribute
        lookups and no bound-method call; the server calls it as it would the bare app)."""
        app, stats, tracing, route, exempt = self.app, self.stats, self.tracing, self.route, self.exempt
        accepted, claims_of, authenticating = self._accepted, self._claims, self.verifier is not None
        endpoint = self.endpoint if self.named else None
        queue = stats.queue.append if stats is not None else None

        def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
            started = perf_counter()
            path = environ.get("PATH_INFO", "")
            checked = path not in exempt  # health probes and scrapes: not authenticated, not traced
            status: str | None = None  # the response's status line, once it started

            def recording_start_response(status_line: str, headers: list, exc_info: Any = None) -> Any:
                nonlocal status
                status = status_line
                return start_response(status_line, headers, exc_info)

            span = None
            if tracing is not None and checked:
                span, token = tracing.start_wsgi(environ, route)
            try:
                body: Iterable[bytes]
                if authenticating and checked:
                    header = environ.get("HTTP_AUTHORIZATION")
                    entry = accepted.get(header)  # None is never a key: no header, no entry
                    if entry is not None and entry[1] >= started:
                        environ["platform.claims"] = entry[0]
                        body = app(environ, recording_start_response)
                    else:
                        try:
                            environ["platform.claims"] = claims_of(header)
                        except AuthError as exc:
                            body = _refuse(exc, recording_start_response)
                        else:
                            body = app(environ, recording_start_response)
                else:
                    body = app(environ, recording_start_response)
            except BaseException as exc:
                if stats is not None:
                    self._count(environ, path, started, status)
                if span is not None:
                    tracing.detach(token)
                    tracing.finish(span, status, exc)
                raise
            if span is not None:
                tracing.detach(token)
            if type(body) is list or isinstance(
                body, tuple
            ):  # the whole answer is made: counted and ended now
                if queue is not None:  # queued, counted in the background (RequestStats.record, inlined)
                    queue(
                        (
                            endpoint(environ) if endpoint is not None else None,
                            environ.get("REQUEST_METHOD", ""),
                            status,
                            perf_counter() - started,
                            path,
                        )
                    )
                    if not stats._started:
                        stats._start()
                if span is not None:
                    tracing.finish(span, status)
                return body

            if stats is None and span is None:
                return body

            # An iterable the server reads: a generator app calls start_response at its first
            # item, so the request is counted, and its span ended, when the server closes it.
            def done(error: BaseException | None) -> None:
                if stats is not None:  # a body that broke off failed, whatever its status said
                    self._count(environ, path, started, 500 if error is not None else status)
                if span is not None:
                    tracing.finish(span, status, error)

            return _ClosingBody(body, done, tracing, span)

        serve.stats, serve.tracing = stats, tracing  # type: ignore[attr-defined]
        return serve

    def _count(self, environ: dict, path: str, started: float, status: int | str | None) -> None:
        endpoint = self.endpoint(environ) if self.named else None
        self.stats.record(endpoint, environ.get("REQUEST_METHOD", ""), status, perf_counter() - started, path)


def status_code(status: int | str | None) -> int | None:
    """A status code from a WSGI status line (``"200 OK"``) or an ASGI status; None if none was
    sent, or if the line does not start with one (counted as a failure)."""
    if status is None or type(status) is int:
        return status
    try:
        return int(status[:3])
    except ValueError:
        return None


class _ClosingBody:
    """A response body the server iterates and then closes (PEP 3333): ``done`` runs once, at
    ``close()``, or with the error that broke the iteration; the request's span, if any, is
    current while the body runs."""

    def __init__(self, body: Iterable[bytes], done: Callable, tracing: Any, span: Any) -> None:
        self.body, self.done, self.tracing, self.span = body, done, tracing, span

    def __iter__(self) -> Iterator[bytes]:
        token = self.tracing.enter(self.span) if self.span is not None else None
        try:
            yield from self.body
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            if token is not None:
                self.tracing.detach(token)

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        done, self.done = self.done, None
        if done is not None:
            done(error)


def _refuse(exc: AuthError, start_response: Callable) -> list[bytes]:
    body = json.dumps(exc.body()).encode()
    start_response(
        "401 Unauthorized" if exc.status == 401 else "403 Forbidden",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("WWW-Authenticate", f'Bearer error="{exc.code}"'),
        ],
    )
    return [body]


class _ASGIStats:
    def __init__(self, app: Callable, stats: RequestStats, endpoint: Callable[[dict], str]) -> None:
        self.app, self.stats, self.endpoint = app, stats, endpoint

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        seen: list[int] = []

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception:
            seen.append(500)
            raise
        finally:
            method = scope.get("method", "")
            environ_like = {"REQUEST_METHOD": method, "PATH_INFO": scope.get("path", "")}
            status = seen[-1] if seen else 500
            endpoint = None if self.endpoint is default_endpoint else self.endpoint(environ_like)
            self.stats.record(endpoint, method, status, perf_counter() - started, environ_like["PATH_INFO"])


def default_endpoint(environ: dict) -> str:
    return f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')}"


def _verifier(verifier: JWKSVerifier | CachingVerifier | None, cache_size: int) -> Any:
    if verifier is None or isinstance(verifier, CachingVerifier) or not cache_size:
        return verifier
    return CachingVerifier(verifier, cache_size=cache_size)


def wsgi(
    app: Callable,
    *,
    verifier: JWKSVerifier | CachingVerifier | None = None,
    scopes: Iterable[str] = (),
    monitor: Any = None,
    metrics: Any = None,
    trace: bool = False,
    exempt_paths: Iterable[str] = EXEMPT,
    endpoint: Callable[[dict], str] = default_endpoint,
    cache_size: int = 10_000,
    route: Callable[[dict], str | None] | None = None,
    tracer_provider: Any = None,
) -> Callable:
    """``app`` authenticated (with a verifier), counted (monitor, metrics) and traced.

    ``trace=True``: a server span per request (:mod:`platform_client.server_span`), to
    ``tracer_provider`` (default: the global one); ``route(environ)`` may name the matched route.

    The returned app's ``stats`` (a :class:`RequestStats`, or None) holds what is not counted
    yet: ``stats.flush()`` counts it now, ``stats.close()`` stops its thread.
    """
    stats = RequestStats(monitor, metrics) if monitor is not None or metrics is not None else None
    return _WSGIMiddleware(
        app,
        verifier=_verifier(verifier, cache_size or 1),
        scopes=scopes,
        stats=stats,
        trace=trace,
        exempt_paths=exempt_paths,
        endpoint=endpoint,
        cache_size=max(cache_size, 1),
        route=route,
        tracer_provider=tracer_provider,
    ).serving()


def asgi(
    app: Callable,
    *,
    verifier: JWKSVerifier | CachingVerifier | None = None,
    scopes: Iterable[str] = (),
    monitor: Any = None,
    metrics: Any = None,
    trace: bool = False,
    exempt_paths: Iterable[str] = EXEMPT,
    endpoint: Callable[[dict], str] = default_endpoint,
    cache_size: int = 10_000,
    route: Callable[[dict], str | None] | None = None,
    tracer_provider: Any = None,
) -> Callable:
    """The same for ASGI apps (websockets: authenticated, not counted)."""
    wrapped: Callable = app
    checker = _verifier(verifier, cache_size)
    if checker is not None:
        wrapped = ASGIAuthMiddleware(wrapped, checker, scopes=scopes, exempt_paths=exempt_paths)
    if monitor is not None or metrics is not None:
        wrapped = _ASGIStats(wrapped, RequestStats(monitor, metrics), endpoint)
    if trace:
        from platform_client.server_span import asgi as traced

        wrapped = traced(wrapped, route=route, tracer_provider=tracer_provider, exempt_paths=exempt_paths)
    return wrapped
