"""Outgoing calls as the platform expects them: the service's token attached (refreshed before it
expires, fetched again once on a 401) and the current trace context propagated (W3C
``traceparent`` and B3, when OpenTelemetry is installed and set up).

``Platform.client(service)`` wraps these in the router's client (``Router.client``), which picks a
node, sends the request's labels as ``X-Micro-Label-<key>`` headers, records each call's latency
and outcome for the router's stats, and retries on another node.

```python
with Platform.from_env() as p:
    orders = p.client("orders", labels={"zone": "eu"})  # httpx; p.client("orders", http="requests")
    orders.request("GET", "/orders/7")
```
"""

from __future__ import annotations

from typing import Any

import httpx

from platform_client.session import ClientCredentials

__all__ = ["httpx_client", "inject_trace", "requests_session"]


def inject_trace(headers: Any) -> None:
    """Write the current trace context into ``headers`` (nothing without OpenTelemetry)."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return
    propagate.inject(headers)


def httpx_client(credentials: ClientCredentials, *, timeout: float = 10.0, **options: Any) -> httpx.Client:
    """An ``httpx.Client`` attaching the service's token and the trace context to each request."""

    def add_trace(request: httpx.Request) -> None:
        inject_trace(request.headers)

    return httpx.Client(auth=credentials, timeout=timeout, event_hooks={"request": [add_trace]}, **options)


def requests_session(credentials: ClientCredentials) -> Any:
    """A ``requests.Session`` doing the same (``requests`` is not an SDK dependency)."""
    import requests

    class PlatformAuth(requests.auth.AuthBase):
        def __call__(self, request: Any) -> Any:
            request.headers["Authorization"] = f"Bearer {credentials.token()}"
            inject_trace(request.headers)
            request.register_hook("response", self.retry_once_on_401)
            return request

        def retry_once_on_401(self, response: Any, **kwargs: Any) -> Any:
            if response.status_code != 401 or getattr(response.request, "_platform_retried", False):
                return response
            retry = response.request.copy()
            retry.headers["Authorization"] = f"Bearer {credentials.token(force=True)}"
            retry._platform_retried = True
            return response.connection.send(retry, **kwargs)

    session = requests.Session()
    session.auth = PlatformAuth()
    return session
