"""``Router.client(service)``: an HTTP client that selects, calls, records and retries.

It wraps an ``httpx.Client`` (the default) or a ``requests.Session``: each request picks a node
(:meth:`Router.select`), sends to ``<scheme>://<address>:<port><path>`` with the request's labels
as ``X-Micro-Label-<key>`` headers, and reports the call (:meth:`Router.mark`).  A connection
failure is retried on another node, and so are a 5xx answer and a timeout for idempotent methods,
while the service's retry budget allows.  A call the caller's rate limit refuses is answered
locally with 429 and ``Retry-After``, as a server would.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from platform_client.router import RateLimited
from platform_client.session import retry_after_seconds

if TYPE_CHECKING:
    from platform_client.router import Router

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _failures() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...], tuple]:
    """(timeouts, connection failures, other transport errors) of httpx and, if installed, requests."""
    timeouts: list[type[BaseException]] = [httpx.TimeoutException]
    connects: list[type[BaseException]] = [httpx.ConnectError]
    others: list[type[BaseException]] = [httpx.TransportError]
    try:
        import requests
    except ImportError:  # requests is optional
        pass
    else:
        timeouts.append(requests.Timeout)
        connects.append(requests.ConnectionError)
        others.append(requests.RequestException)
    return tuple(timeouts), tuple(connects), tuple(others)


TIMEOUTS, CONNECTS, TRANSPORT = _failures()


class RoutedClient:
    """Requests to one service through the router's picks."""

    def __init__(
        self,
        router: Router,
        service: str,
        http: Any = None,
        *,
        scheme: str = "http",
        labels: Mapping[str, str] | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.router = router
        self.service = service
        self.http = http if http is not None else httpx.Client(timeout=10.0)
        self.scheme = scheme
        self.labels = dict(labels or {})
        self.max_attempts = max(1, max_attempts)
        self._requests_backend = not isinstance(self.http, httpx.Client)

    def request(
        self,
        method: str,
        path: str,
        *,
        labels: Mapping[str, str] | None = None,
        endpoint: str = "",
        **kwargs: Any,
    ) -> Any:
        method = method.upper()
        merged = {**self.labels, **(labels or {})}
        headers = dict(kwargs.pop("headers", None) or {})
        headers.update({f"X-Micro-Label-{key}": value for key, value in merged.items()})
        tried: set[str] = set()
        response = None
        failure: Exception | None = None  # the last attempt's transport error, while retrying
        for attempt in range(self.max_attempts):
            if attempt and not self.router.retry_allowed(self.service):
                break
            try:
                node = self.router.select(
                    self.service, labels=merged or None, exclude=tried, endpoint=endpoint
                )
            except RateLimited as exc:
                if attempt:  # a retry the limit refuses: the caller learns what befell its call
                    break
                return self._refusal(exc)
            tried.add(node.id)
            url = f"{self.scheme}://{node.address}:{node.port}{path}"
            started = time.perf_counter()
            try:
                response = self.http.request(method, url, headers=headers, **kwargs)
            except TIMEOUTS as exc:
                self._mark(node, started, ok=False, timeout=True, endpoint=endpoint)
                if method in IDEMPOTENT and attempt + 1 < self.max_attempts:
                    failure = exc
                    continue
                raise
            except CONNECTS as exc:
                self._mark(node, started, ok=False, endpoint=endpoint)
                if attempt + 1 < self.max_attempts:
                    failure = exc
                    continue
                raise
            except TRANSPORT:
                self._mark(node, started, ok=False, endpoint=endpoint)
                raise
            status = response.status_code
            ok = status < 500 and status != 429
            retry_after = (
                retry_after_seconds(response.headers.get("Retry-After")) if status in (429, 503) else None
            )
            self._mark(node, started, ok=ok, retry_after=retry_after, endpoint=endpoint)
            if ok or method not in IDEMPOTENT:
                return response
            failure = None
        if failure is not None:  # retrying stopped (its budget, a rate limit) after an error
            raise failure
        return response

    def _mark(self, node: Any, started: float, **kwargs: Any) -> None:
        self.router.mark(node, latency_ms=(time.perf_counter() - started) * 1000, **kwargs)

    def _refusal(self, exc: RateLimited) -> Any:
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after))), "Content-Type": "application/json"}
        if not self._requests_backend:
            return httpx.Response(429, headers=headers, json=body)
        import requests

        response = requests.Response()
        response.status_code = 429
        response.headers.update(headers)
        response._content = json.dumps(body).encode()
        response.reason = "Too Many Requests"
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.http.close()
