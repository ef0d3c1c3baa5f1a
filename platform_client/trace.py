"""Tracing for services on the platform: the OpenTelemetry SDK, set up to export to it.

No tracer of our own: :func:`setup` configures the stock OpenTelemetry SDK (the ``otel`` extra:
``pip install "micro-platform-client[otel]"``) with its OTLP/HTTP protobuf exporter pointed explicitly
at the platform's ``/v1/traces`` (the stock distro would default to gRPC), the service account's
bearer token (refreshed before it expires), W3C ``traceparent`` plus B3 propagation, and, on
request, the instrumentations for Django, httpx and requests.  Two lines in a service::

    from platform_client import trace

    trace.setup(service="checkout")  # PLATFORM_URL, PLATFORM_CLIENT_ID/_SECRET from the env

The read side (:func:`search`, :func:`get`, :func:`services`, :func:`dependencies`,
:func:`compare`) calls the platform's trace API with a :class:`PlatformSession`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from platform_client.session import PlatformSession

T = "/api/v1/trace"
#: library -> (module, instrumentor class, the distribution that has them). The SDK's ``otel``
#: extra has httpx's; the others are installed beside it by a service that uses the library.
INSTRUMENTATIONS = {
    "django": (
        "opentelemetry.instrumentation.django",
        "DjangoInstrumentor",
        "opentelemetry-instrumentation-django",
    ),
    "httpx": (
        "opentelemetry.instrumentation.httpx",
        "HTTPXClientInstrumentor",
        "opentelemetry-instrumentation-httpx",
    ),
    "requests": (
        "opentelemetry.instrumentation.requests",
        "RequestsInstrumentor",
        "opentelemetry-instrumentation-requests",
    ),
}


def _instrumentors(libraries: Iterable[str]) -> list[Any]:
    """Each library's instrumentor class, all found before anything is set up."""
    found = []
    for library in libraries:
        if library not in INSTRUMENTATIONS:
            raise ValueError(f"cannot instrument {library!r}: one of {', '.join(INSTRUMENTATIONS)}")
        module, cls, distribution = INSTRUMENTATIONS[library]
        try:
            found.append(getattr(importlib.import_module(module), cls))
        except ImportError as exc:
            raise ImportError(
                f"instrumenting {library!r} needs {distribution}: pip install {distribution}"
            ) from exc
    return found


class _BearerSession:
    """A ``requests`` session for the exporter that sends the account's current bearer token."""

    def __new__(cls, session: PlatformSession) -> Any:
        import requests

        class Authorized(requests.Session):
            def request(self, method: str, url: str, **kwargs: Any) -> Any:
                headers = dict(kwargs.pop("headers", None) or {})
                headers["Authorization"] = f"Bearer {session.credentials.token()}"
                answer = super().request(method, url, headers=headers, **kwargs)
                if answer.status_code == 401:  # the token was revoked or expired early
                    session.credentials.invalidate()
                return answer

        return Authorized()


def setup(
    service: str | None = None,
    *,
    session: PlatformSession | None = None,
    version: str | None = None,
    instrument: Iterable[str] = (),
    sample_ratio: float | None = None,
    batch: bool = True,
) -> Any:
    """Configure OpenTelemetry to export this process's spans to the platform; the TracerProvider.

    ``service`` defaults to ``$PLATFORM_SERVICE_NAME`` (then ``$OTEL_SERVICE_NAME``); spans are
    sampled parent-based at ``sample_ratio``: a request whose caller sent a sampled ``traceparent``
    is recorded, one with an unsampled parent is not, and a new trace is recorded with probability
    ``sample_ratio`` (default: OpenTelemetry's ``OTEL_TRACES_SAMPLER`` variables, else every
    one); ``instrument`` names the libraries to
    instrument (``django``, ``httpx``, ``requests``); ``batch=False`` exports each span when it
    ends (tests, short scripts).
    """
    from opentelemetry import propagate, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagators.b3 import B3MultiFormat
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    instrumentors = _instrumentors(instrument)
    session = session or PlatformSession()
    name = (
        service
        or os.environ.get("PLATFORM_SERVICE_NAME")
        or os.environ.get("OTEL_SERVICE_NAME")
        or "unknown_service"
    )
    attributes = {"service.name": name}
    if version or os.environ.get("PLATFORM_SERVICE_VERSION"):
        attributes["service.version"] = version or os.environ["PLATFORM_SERVICE_VERSION"]
    exporter = OTLPSpanExporter(
        endpoint=f"{str(session.base_url).rstrip('/')}/v1/traces", session=_BearerSession(session)
    )
    sampler = ParentBased(TraceIdRatioBased(sample_ratio)) if sample_ratio is not None else None
    provider = TracerProvider(
        resource=Resource.create(attributes), **({"sampler": sampler} if sampler else {})
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), B3MultiFormat()]))
    for instrumentor in instrumentors:
        instrumentor().instrument(tracer_provider=provider)
    return provider


def wsgi(app: Any, *, route: Any = None) -> Any:
    """A WSGI app wrapped so each request is a server span (:mod:`platform_client.server_span`:
    the OpenTelemetry API directly, the attributes the HTTP conventions require, W3C parent)."""
    from platform_client.server_span import wsgi as span_wsgi

    return span_wsgi(app, route=route)


def asgi(app: Any, *, route: Any = None) -> Any:
    """An ASGI app wrapped so each HTTP request is a server span (as :func:`wsgi`)."""
    from platform_client.server_span import asgi as span_asgi

    return span_asgi(app, route=route)


# --- reading traces -----------------------------------------------------------------------------


def search(session: PlatformSession, **conditions: Any) -> list[dict[str, Any]]:
    """Trace summaries, newest first: ``service``, ``operation``, ``tag`` (list of ``k=v``),
    ``word``, ``min_duration_ms``, ``max_duration_ms``, ``error``, ``since``, ``until``, ``limit``."""
    params = {k: v for k, v in conditions.items() if v is not None and v is not False and v != "" and v != []}
    return session.call("GET", f"{T}/traces/", params=params)["traces"]


def get(session: PlatformSession, trace_id: str, *, raw: bool = False) -> dict[str, Any]:
    return session.call("GET", f"{T}/traces/{trace_id}/", params={"raw": "true"} if raw else None)


def services(session: PlatformSession) -> list[dict[str, Any]]:
    return session.call("GET", f"{T}/services/")["services"]


def dependencies(
    session: PlatformSession, *, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    params = {k: v for k, v in (("since", since), ("until", until)) if v}
    return session.call("GET", f"{T}/graph/", params=params)


def compare(session: PlatformSession, a: str, b: str) -> dict[str, Any]:
    return session.call("GET", f"{T}/compare/", params={"a": a, "b": b})


# --- keep rules (writing them needs trace:manage) ------------------------------------------------


def rules(session: PlatformSession) -> list[dict[str, Any]]:
    """Every keep rule the caller may read (``*``: every service without one of its own)."""
    found: list[dict[str, Any]] = []
    page: dict[str, Any] | None = session.call("GET", f"{T}/rules/")
    while page is not None:
        found += page["results"]
        page = session.call("GET", page["next"]) if page.get("next") else None
    return found


def set_rule(session: PlatformSession, service: str, **rule: Any) -> dict[str, Any]:
    """Create or replace ``service``'s rule: ``keep_errors``, ``keep_share``, ``slower_than_ms``,
    ``retention_days``; a field left out takes its default (the whole rule is replaced)."""
    return session.call("PUT", f"{T}/rules/{quote(service, safe='')}/", json=rule)


def delete_rule(session: PlatformSession, service: str) -> None:
    session.call("DELETE", f"{T}/rules/{quote(service, safe='')}/")
