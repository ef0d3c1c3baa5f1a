"""Zipkin's v2 query API (``/api/v2/...``), as Zipkin's UI and tools call it.

Times: ``endTs`` and ``lookback`` in milliseconds, durations in microseconds.  ``lookback``
defaults to TRACE_DEFAULT_LOOKBACK_HOURS.  A 128-bit trace id whose high half is zero is answered
in its 16-hex form and found under either form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.policy import every_resource, resource_for
from platformsite.api.errors import Invalid, NotFound
from platformsite.api.schema import OBJECTS
from platformsite.api.views import ServiceView
from trace_app import assembly, query, selectors
from trace_app.decoding import zipkin
from trace_app.store import TraceQuery

NAMES = serializers.ListSerializer(child=serializers.CharField())
SPAN_LISTS = serializers.ListSerializer(child=OBJECTS)


def _zipkin_trace(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [zipkin.encode(span) for span in sorted(assembly.merge(spans), key=lambda s: s["timestamp"])]


def service_param(request: Request) -> str:
    name = query.text(request.query_params, "serviceName")
    if not name:
        raise Invalid("serviceName is required.", "invalid_parameter", {"parameter": "serviceName"})
    return name


def service_resources(request: Request) -> list[str]:
    """A read about one service (``serviceName``) is authorized on ``trace:<service>``, as the
    native search by service is: a policy that hides a service hides it on both APIs."""
    name = request.query_params.get("serviceName") if request.method == "GET" else None
    return [resource_for("trace", name)] if name else []


def readable(view: ServiceView, request: Request) -> Callable[[str], bool]:
    """``service name -> whether the caller may read its spans`` (``trace:<name>``), each name
    decided once.  Answers about several services keep only what the caller may read: a trace
    is shown (searched, listed) only when it may read each of its services, the graph only the
    edges between services it may read; a trace asked for by id is refused (403) instead."""
    allowed = view.allows(request, "read")
    decided: dict[str, bool] = {}

    def may_read(name: str) -> bool:
        if name not in decided:
            decided[name] = allowed(resource_for("trace", name))
        return decided[name]

    return may_read


def readable_graph(graph: dict[str, Any], may_read: Callable[[str], bool]) -> dict[str, Any]:
    """The graph's edges between services the caller may read, and its services counted over
    those edges alone (a service's calls to one it may not read are not shown in its counts)."""
    edges = [e for e in graph["edges"] if may_read(e["parent"]) and may_read(e["child"])]
    return {**graph, "edges": edges, "services": selectors.graph_services(edges)}


def authorize_services(view: ServiceView, request: Request, spans: list[dict[str, Any]]) -> None:
    """403 ``policy_denied`` unless the caller may read each service with spans in the trace."""
    for name in sorted({span["service"] for span in spans}):
        view.authorize(request, resource_for("trace", name), "read")


class ZipkinView(ServiceView):
    service = "trace"
    pagination_class = None

    def resources(self, request: Request, **kwargs: Any) -> list[str]:
        return service_resources(request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        for name, values in request.query_params.lists():  # PostgreSQL refuses NUL in text
            if "\x00" in name or any("\x00" in value for value in values):
                raise Invalid(
                    f"{name[:40]!r} must not contain NUL characters.",
                    "invalid_parameter",
                    {"parameter": name[:40]},
                )


def doc(summary: str, response: Any, *params: OpenApiParameter) -> Any:
    return extend_schema(summary=summary, responses={200: response}, parameters=list(params))


def param(name: str, kind: Any = str, required: bool = False, description: str = "") -> OpenApiParameter:
    return OpenApiParameter(name, kind, required=required, description=description)


class ServicesView(ZipkinView):
    @doc("Zipkin: service names", NAMES)
    def get(self, request: Request) -> Response:
        return Response(list(filter(readable(self, request), selectors.service_names())))


class RemoteServicesView(ZipkinView):
    @doc("Zipkin: remote services a service calls", NAMES, param("serviceName", required=True))
    def get(self, request: Request) -> Response:
        may_read = readable(self, request)
        return Response(
            [name for name in selectors.remote_services(service_param(request)) if may_read(name)]
        )


class TracesView(ZipkinView):
    @doc(
        "Zipkin: search traces",
        SPAN_LISTS,
        param("serviceName"),
        param("remoteServiceName"),
        param("spanName"),
        param("annotationQuery", description="`k=v` and words, joined by `and`"),
        param("minDuration", int, description="µs"),
        param("maxDuration", int, description="µs"),
        param("endTs", int, description="ms since the epoch (default now)"),
        param("lookback", int, description="ms before endTs"),
        param("limit", int),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        end_ms = query.integer(params, "endTs", query.now_us() // 1000, minimum=1)
        lookback = query.integer(params, "lookback", settings.TRACE_DEFAULT_LOOKBACK_HOURS * 3_600_000)
        limit = min(query.integer(params, "limit", 10, minimum=1), settings.TRACE_SEARCH_MAX)
        tags, words = query.terms(params.get("annotationQuery", ""))
        span_name = query.text(params, "spanName")
        found = TraceQuery(
            start=max(0, end_ms - lookback) * 1000,
            end=end_ms * 1000,
            limit=limit,
            service=query.text(params, "serviceName"),
            remote_service=query.text(params, "remoteServiceName"),
            operation="" if span_name.lower() == "all" else span_name,
            operation_any_case=True,  # Zipkin lower-cases span names, and its spanName with them
            tags=tags,
            words=words,
            min_duration=query.integer(params, "minDuration"),
            max_duration=query.integer(params, "maxDuration"),
        )
        may_read = readable(self, request)
        summaries = selectors.search(found, keep=lambda summary: all(map(may_read, summary["services"])))
        spans = selectors.traces([s["trace_id"] for s in summaries])
        traces = [spans[s["trace_id"]] for s in summaries]
        return Response([_zipkin_trace(trace) for trace in traces])


class TraceView(ZipkinView):
    @doc("Zipkin: one trace", OBJECTS)
    def get(self, request: Request, trace_id: str) -> Response:
        wanted = query.trace_id(trace_id)
        spans = selectors.traces([wanted]).get(selectors.stored_id(wanted))
        if not spans:
            raise NotFound(f"No trace {wanted}.", "trace_not_found")
        authorize_services(self, request, spans)
        return Response(_zipkin_trace(spans))


class TraceManyView(ZipkinView):
    @doc(
        "Zipkin: several traces", SPAN_LISTS, param("traceIds", required=True, description="comma-separated")
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("traceIds", "")
        if len(raw.split(",")) < 2:
            raise Invalid(
                "traceIds names at least two trace ids.", "invalid_parameter", {"parameter": "traceIds"}
            )
        wanted = [query.trace_id(i) for i in raw.split(",")]  # an empty one too is a 400
        stored = [selectors.stored_id(i) for i in wanted]
        for given, same in zip(wanted, stored, strict=True):
            if stored.count(same) > 1:  # Zipkin's spec: a redundant list is a bad request
                raise Invalid(
                    f"traceIds names trace {given} more than once (in one of its forms).",
                    "invalid_parameter",
                    {"parameter": "traceIds"},
                )
        found = selectors.traces(wanted)
        answers = [found.get(i) for i in stored]
        for spans in answers:
            if spans:
                authorize_services(self, request, spans)
        return Response([_zipkin_trace(spans) for spans in answers if spans])


class DependenciesView(ZipkinView):
    @doc(
        "Zipkin: service dependency links",
        OBJECTS,
        param("endTs", int, required=True, description="ms"),
        param("lookback", int, description="ms"),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        end_ms = query.integer(params, "endTs", minimum=1)
        if end_ms is None:
            raise Invalid(
                "endTs is required (ms since the epoch).", "invalid_parameter", {"parameter": "endTs"}
            )
        lookback = query.integer(params, "lookback", 86_400_000)
        graph = readable_graph(
            selectors.graph(max(0, end_ms - lookback) * 1000, end_ms * 1000), readable(self, request)
        )
        return Response(
            [
                {
                    "parent": e["parent"],
                    "child": e["child"],
                    "callCount": e["calls"],
                    "errorCount": e["errors"],
                }
                for e in graph["edges"]
            ]
        )


class AutocompleteKeysView(ZipkinView):
    @doc("Zipkin: tag keys with autocompleted values", NAMES)
    def get(self, request: Request) -> Response:
        return Response(list(settings.TRACE_AUTOCOMPLETE_KEYS))


class AutocompleteValuesView(ZipkinView):
    def resources(self, request: Request, **kwargs: Any) -> list[str]:
        # the values are seen across every service (they are not kept per service): a reader a
        # policy narrows to some services may not list them (403), as it may not read the others
        return [every_resource("trace")]

    @doc("Zipkin: values seen for a key", NAMES, param("key", required=True))
    def get(self, request: Request) -> Response:
        key = query.text(request.query_params, "key")
        if not key:
            raise Invalid("key is required.", "invalid_parameter", {"parameter": "key"})
        return Response(selectors.tag_values(key))
