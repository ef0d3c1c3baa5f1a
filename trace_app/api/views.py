"""The trace service's native API: search, a trace, compare, the service graph, keep rules.

Reads need ``trace:read``; a search by service is also authorized on ``trace:<service>``.  Keep
rules are written with ``trace:write`` and authorized on ``trace:<service>``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.policy import resource_for
from platformsite.api.errors import Invalid, NotFound
from platformsite.api.pagination import CursorPagination
from platformsite.api.schema import ERROR
from platformsite.api.validators import parse_flag
from platformsite.api.views import ServiceView, validated
from trace_app import assembly, query, selectors
from trace_app.api import serializers as s
from trace_app.services import keeping
from trace_app.store import TraceQuery
from trace_app.zipkin_api import authorize_services, readable, readable_graph


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _before(until: datetime, hours: int) -> datetime:
    """``hours`` before ``until``; 400 when that is before the first year a date can hold."""
    try:
        return until - timedelta(hours=hours)
    except OverflowError:
        raise Invalid("until is too early.", "invalid_parameter", {"parameter": "until"}) from None


def _params(request: Request) -> dict[str, Any]:
    """Query parameters as a serializer reads them (repeatable ones as lists)."""
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k not in ("tag", "word")}
    for listed in ("tag", "word"):
        if listed in request.query_params:
            params[listed] = request.query_params.getlist(listed)
    return params


class TraceView(ServiceView):
    """Reads keep what the caller's policy lets it read (``trace:<service>`` rules; see
    :func:`trace_app.zipkin_api.readable`)."""

    service = "trace"
    pagination_class = None


class SearchView(TraceView):
    def resources(self, request: Request, **kwargs: Any) -> list[str]:
        service = request.query_params.get("service")
        return [resource_for("trace", service)] if service else []

    @extend_schema(
        operation_id="api_v1_trace_traces_search",
        summary="Search traces (every condition on one span; the limit applies last)",
        parameters=[s.SearchSerializer],
        responses={200: s.SearchResultSerializer},
    )
    def get(self, request: Request) -> Response:
        data = validated(s.SearchSerializer, _params(request), known_only=False)
        until = data.get("until") or timezone.now()
        since = data.get("since") or _before(until, settings.TRACE_DEFAULT_LOOKBACK_HOURS)
        tags = tuple(tuple(term.split("=", 1)) for term in data.get("tag", []))
        low, high = data.get("min_duration_ms"), data.get("max_duration_ms")
        found = TraceQuery(
            start=_us(since),
            end=_us(until),
            limit=data["limit"],
            service=data.get("service", ""),
            remote_service=data.get("remote_service", ""),
            operation=data.get("operation", ""),
            tags=tags,
            words=tuple(data.get("word", [])),
            min_duration=None if low is None else query.milliseconds(low, "min_duration_ms"),
            max_duration=None if high is None else query.milliseconds(high, "max_duration_ms"),
            error_only=data["error"],
        )
        may_read = readable(self, request)
        traces = selectors.search(found, keep=lambda summary: all(map(may_read, summary["services"])))
        return Response(s.SearchResultSerializer({"traces": traces}).data)


class TraceDetailView(TraceView):
    @extend_schema(
        summary="One trace: spans as a tree in start order, clock skew adjusted unless raw=true",
        parameters=[OpenApiParameter("raw", bool, description="times as reported, no skew adjustment")],
        responses={200: s.TraceSerializer},
    )
    def get(self, request: Request, trace_id: str) -> Response:
        wanted = query.trace_id(trace_id)
        raw = parse_flag(request.query_params, "raw")
        found = selectors.trace(wanted, raw=raw)
        if found is None:
            raise NotFound(f"No trace {wanted}.", "trace_not_found")
        authorize_services(self, request, found["spans"])
        return Response(s.TraceSerializer(found).data)


class CompareView(TraceView):
    @extend_schema(
        summary="Two traces side by side, spans matched by service and operation",
        parameters=[OpenApiParameter("a", str, required=True), OpenApiParameter("b", str, required=True)],
        responses={200: s.CompareSerializer},
    )
    def get(self, request: Request) -> Response:
        ids = [query.trace_id(request.query_params.get(side, ""), f"trace id {side}") for side in ("a", "b")]
        traces = [selectors.trace(trace_id) for trace_id in ids]
        for trace_id, trace in zip(ids, traces, strict=True):
            if trace is None:
                raise NotFound(f"No trace {trace_id}.", "trace_not_found")
            authorize_services(self, request, trace["spans"])
        return Response(s.CompareSerializer(assembly.compare(*traces)).data)


class GraphView(TraceView):
    @extend_schema(
        summary="The service graph: calls, errors and latency percentiles per edge (default: last hour)",
        parameters=[s.GraphParamsSerializer],
        responses={200: s.GraphSerializer},
    )
    def get(self, request: Request) -> Response:
        data = validated(s.GraphParamsSerializer, request.query_params, known_only=False)
        until = data.get("until") or timezone.now()
        since = data.get("since") or _before(until, 1)
        if since > until:
            raise Invalid("since is after until.", "invalid_parameter", {"parameter": "since"})
        graph = readable_graph(selectors.graph(_us(since), _us(until)), readable(self, request))
        return Response(s.GraphSerializer(graph).data)


class ServicesView(TraceView):
    @extend_schema(
        summary="Services that report spans, with their operations",
        responses={200: s.ServicesSerializer},
    )
    def get(self, request: Request) -> Response:
        may_read = readable(self, request)
        services = [service for service in selectors.services_overview() if may_read(service["name"])]
        return Response(s.ServicesSerializer({"services": services}).data)


#: Writing keep rules: trace:write is every exporter's scope, and a rule can drop or expire
#: every service's spans.
MANAGE = "trace:manage"


class RuleListView(TraceView):
    pagination_class = CursorPagination
    required_scopes = {"GET": "trace:read", "POST": MANAGE}

    def resources(self, request: Request, **kwargs: Any) -> list[str]:
        if (
            request.method == "POST"
            and isinstance(request.data, dict)
            and isinstance(request.data.get("service"), str)
        ):
            return [resource_for("trace", request.data["service"])]
        return []

    @extend_schema(summary="Keep rules", responses={200: s.KeepRuleSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rules = keeping.keep_rules_readable(readable(self, request))
        return self.paginate(rules, ordering="service", serializer=s.KeepRuleSerializer)

    @extend_schema(
        summary="Create a keep rule",
        request=s.KeepRuleSerializer,
        responses={201: s.KeepRuleSerializer, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        rule = keeping.keep_rule_create(**validated(s.KeepRuleSerializer, request.data))
        return Response(s.KeepRuleSerializer(rule).data, status=201)


class RuleDetailView(TraceView):
    required_scopes = {"GET": "trace:read", "PUT": MANAGE, "DELETE": MANAGE}

    def resources(self, request: Request, service: str, **kwargs: Any) -> list[str]:
        return [resource_for("trace", s.SERVICE_NAME.check(service, "service"))]

    @extend_schema(summary="A keep rule", responses={200: s.KeepRuleSerializer})
    def get(self, request: Request, service: str) -> Response:
        return Response(s.KeepRuleSerializer(keeping.keep_rule(service)).data)

    @extend_schema(
        summary="Create or replace a keep rule",
        request=s.KeepRuleSerializer,
        responses={200: s.KeepRuleSerializer},
    )
    def put(self, request: Request, service: str) -> Response:
        body = request.data
        if isinstance(body, dict):
            if body.get("service", service) != service:  # it was ignored: the URL's rule was written
                raise Invalid(
                    f"The rule is {service!r}'s (the URL's); its service cannot change.",
                    details={"service": ["Not the URL's service."]},
                )
            body = {**body, "service": service}
        rule = keeping.keep_rule_set(**validated(s.KeepRuleSerializer, body))
        return Response(s.KeepRuleSerializer(rule).data)

    @extend_schema(summary="Delete a keep rule", responses={204: None})
    def delete(self, request: Request, service: str) -> Response:
        keeping.keep_rule_delete(service=service)
        return Response(status=204)
