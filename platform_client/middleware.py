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
extra), the stats (so refused calls are counted too), then authentication: a missing, forged or
expired token is 401, a missing scope 403, in the platform's error shape; the claims are in
``environ["platform.claims"]`` / ``scope["platform.claims"]``.  ``exempt_paths`` (health and
metrics) skip authentication.

Verified tokens are remembered (up to ``cache_size``, until they expire): a caller sends the same
token until it is refreshed, and an RSA signature check per request would cost more than the
handler.  Scopes are checked on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from platform_client.auth import ASGIAuthMiddleware, AuthError, JWKSVerifier, WSGIAuthMiddleware, bearer_token

__all__ = ["CachingVerifier", "asgi", "wsgi"]

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


def _child(stats: Any, method: str, status: int) -> Any:
    """The histogram's child for (method, status), looked up once (at most 200 kept)."""
    children = stats.__dict__.setdefault("_children", {})
    child = children.get((method, status))
    if child is None:
        child = stats.histogram.labels(method=method[:16], status=str(status))
        if len(children) < 200:
            children[(method, status)] = child
    return child


def _outcome(status: int) -> str:
    return "errors" if status >= 500 else "success"


class _WSGIStats:
    def __init__(self, app: Callable, monitor: Any, metrics: Any, endpoint: Callable[[dict], str]) -> None:
        self.app, self.monitor, self.endpoint = app, monitor, endpoint
        self.histogram = (
            metrics.histogram("http_server_duration_seconds", "Requests served.", labels=("method", "status"))
            if metrics is not None
            else None
        )

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: list[int] = []

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            seen.append(int(status[:3]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            return self.app(environ, recording_start_response)
        except Exception:
            seen.append(500)
            raise
        finally:
            status = seen[-1] if seen else 500
            if self.monitor is not None:
                self.monitor.endpoints.count(self.endpoint(environ), _outcome(status))
            if self.histogram is not None:
                _child(self, environ.get("REQUEST_METHOD", ""), status).observe(time.perf_counter() - started)


class _ASGIStats:
    def __init__(self, app: Callable, monitor: Any, metrics: Any, endpoint: Callable[[dict], str]) -> None:
        self.app, self.monitor, self.endpoint = app, monitor, endpoint
        self.histogram = (
            metrics.histogram("http_server_duration_seconds", "Requests served.", labels=("method", "status"))
            if metrics is not None
            else None
        )

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
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
            status = seen[-1] if seen else 500
            environ_like = {"REQUEST_METHOD": scope.get("method", ""), "PATH_INFO": scope.get("path", "")}
            if self.monitor is not None:
                self.monitor.endpoints.count(self.endpoint(environ_like), _outcome(status))
            if self.histogram is not None:
                _child(self, scope.get("method", ""), status).observe(time.perf_counter() - started)


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
) -> Callable:
    """``app`` authenticated (with a verifier), counted (monitor, metrics) and traced."""
    wrapped: Callable = app
    checker = _verifier(verifier, cache_size)
    if checker is not None:
        wrapped = WSGIAuthMiddleware(wrapped, checker, scopes=scopes, exempt_paths=exempt_paths)
    if monitor is not None or metrics is not None:
        wrapped = _WSGIStats(wrapped, monitor, metrics, endpoint)
    if trace:
        from platform_client.trace import wsgi as traced

        wrapped = traced(wrapped)
    return wrapped


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
) -> Callable:
    """The same for ASGI apps (websockets: authenticated, not counted)."""
    wrapped: Callable = app
    checker = _verifier(verifier, cache_size)
    if checker is not None:
        wrapped = ASGIAuthMiddleware(wrapped, checker, scopes=scopes, exempt_paths=exempt_paths)
    if monitor is not None or metrics is not None:
        wrapped = _ASGIStats(wrapped, monitor, metrics, endpoint)
    if trace:
        from platform_client.trace import asgi as traced

        wrapped = traced(wrapped)
    return wrapped
