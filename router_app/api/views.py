"""The router service's REST API: stats ingest, routes, decisions, labels, rules, rate limits, policy.

Every call about one service is authorized on the policy resource ``router:<service>``: reads
(routes, decisions) for ``read``, operator writes for ``write``.  Stats ingest needs the
``router:report`` scope and ``read`` on each service it reports on.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.access import actor
from platformsite.api.errors import Invalid, NotFound
from platformsite.api.schema import ERROR
from platformsite.api.views import ServiceView, validated
from router_app import selectors, services
from router_app.api import serializers as io
from router_app.models import Label, NodeState, Policy, RateLimit, Rule

HEADER_PREFIX = "x-micro-label-"
MAX_LABELS = 20


def resource(service: str) -> str:
    return f"router:{service}"


class RouterView(ServiceView):
    service = "router"

    def readable(self, request: Request, rows: Any) -> Any:
        """``rows`` (each naming a service) of only the services the caller's policy lets it read."""
        allowed = self.allows(request, "read")
        names = rows.values_list("service", flat=True).distinct()
        return rows.filter(service__in=[name for name in names if allowed(resource(name))])


class ServiceScopedView(RouterView):
    """A view under ``services/<name>/`` or ``routes/<name>/``: the name is the policy resource."""

    def resources(self, request: Request, name: str, **kwargs: Any):
        if not services.SERVICE.matches(name):  # no service (nor rule) can have this name
            raise NotFound(f"No service named {name[:80]!r}.")
        return (resource(name),)


def routes_cache_control(routes: dict[str, Any]) -> str:
    return f"max-age={routes['ttl']}"


def parse_request_labels(request: Request) -> dict[str, str]:
    """``?labels=k:v,k:v`` and ``X-Micro-Label-<key>`` headers (the query wins on the same key)."""
    labels: dict[str, str] = {}
    for header, value in request.headers.items():
        if header.lower().startswith(HEADER_PREFIX):
            labels[header[len(HEADER_PREFIX) :].lower()] = value.strip()
    raw = request.query_params.get("labels", "")
    for item in filter(None, raw.split(",")):
        key, sep, value = item.partition(":")
        labels[key] = value if sep else None
    errors = [
        f"{key[:63]}:{value[:40]}" if value is not None else key[:63]
        for key, value in labels.items()
        if not services.LABEL_KEY.matches(key) or not services.LABEL_VALUE.matches(value)
    ]
    if errors or len(labels) > MAX_LABELS:
        raise Invalid(
            f"Labels are up to {MAX_LABELS} key:value pairs; keys {services.LABEL_KEY.hint}, values "
            f"{services.LABEL_VALUE.hint}.",
            code="invalid_labels",
            details={"labels": errors[:MAX_LABELS]},
        )
    return labels


class RoutesView(ServiceScopedView):
    """Where a caller's requests to a service go: versions, nodes with weights and reasons, rules."""

    @extend_schema(
        parameters=[
            OpenApiParameter("caller", str, description="The caller's name (picks its rate limit)."),
            OpenApiParameter(
                "labels", str, description="Request labels key:value,key:value (also X-Micro-Label-<key>)."
            ),
        ],
        responses=io.RouterRoutesOutput,
    )
    def get(self, request: Request, name: str) -> Response:
        caller = request.query_params.get("caller") or None
        if caller is not None and not services.CALLER.matches(caller):
            raise Invalid(f"caller: {services.CALLER.hint}.", code="invalid_caller")
        labels = parse_request_labels(request)
        document = selectors.routes_document(name)
        if document is None:
            raise NotFound(f"No service named {name!r} is registered.", code="unknown_service")
        routes = selectors.routes_for(document, caller=caller, labels=labels)
        response = Response(routes)
        response["Cache-Control"] = routes_cache_control(routes)
        return response


class DecisionsView(ServiceScopedView):
    """A service's current state per node and its last decisions (Envoy's outlier events)."""

    @extend_schema(responses=io.RouterDecisionsOutput)
    def get(self, request: Request, name: str) -> Response:
        _known(name)  # a typo reads as 404 here too, not as an empty service
        return Response(io.RouterDecisionsOutput(selectors.decisions(name)).data)


def _known(name: str) -> None:
    if not selectors.service_known(name):
        raise NotFound(f"No service named {name!r} is registered.", code="unknown_service")


class EvaluateView(ServiceScopedView):
    """Evaluate a service now (the beat task does every ``interval``)."""

    @extend_schema(request=None, responses=io.RouterEvaluationOutput)
    def post(self, request: Request, name: str) -> Response:
        _known(name)
        result = services.service_evaluate(service=name, now=time.time())
        return Response(io.RouterEvaluationOutput(result.__dict__).data)


class PolicyView(ServiceScopedView):
    """A service's outlier-detection parameters and its dry-run switch (``enforce``)."""

    @extend_schema(responses=io.RouterPolicyOutput)
    def get(self, request: Request, name: str) -> Response:
        _known(name)
        return Response(io.RouterPolicyOutput(selectors.policy_data(selectors.policy_of(name))).data)

    @extend_schema(request=io.RouterPolicyInput, responses=io.RouterPolicyOutput)
    def patch(self, request: Request, name: str) -> Response:
        values = validated(io.RouterPolicyInput, request.data)
        _known(name)  # a typo must not make a service of its own
        policy = services.policy_update(service=name, values=values)
        return Response(io.RouterPolicyOutput(selectors.policy_data(policy)).data)


class ServiceListView(RouterView):
    """Services the router has evaluated or holds a policy for, with node and ejection counts."""

    @extend_schema(responses=io.RouterServiceOutput(many=True))
    def get(self, request: Request) -> Response:
        def render(policies: list[Policy]) -> list[dict[str, Any]]:
            counts = {
                row["service"]: row
                for row in NodeState.objects.filter(service__in=[p.service for p in policies])
                .values("service")
                .annotate(nodes=Count("id"), ejected=Count("id", filter=Q(ejected=True)))
            }
            return io.RouterServiceOutput(
                [
                    {
                        **selectors.policy_data(p),
                        "nodes": counts.get(p.service, {}).get("nodes", 0),
                        "ejected": counts.get(p.service, {}).get("ejected", 0),
                    }
                    for p in policies
                ],
                many=True,
            ).data

        return self.paginate(self.readable(request, Policy.objects.all()), ordering="service", render=render)


def body_service(request: Request) -> tuple[str, ...]:
    """The resource a creation writes: its body's service (a bad name is refused with the other fields)."""
    name = request.data.get("service") if isinstance(request.data, dict) else None
    return (resource(name),) if services.SERVICE.matches(name) else ()


def query_service(request: Request) -> tuple[str, ...]:
    name = request.query_params.get("service")
    if name is None:
        return ()
    if not services.SERVICE.matches(name):
        raise ValidationError({"service": [f"A service name: {services.SERVICE.hint}."]})
    return (resource(name),)


class _DefinitionList(RouterView):
    """Labels or rules: list (``?service=`` narrows, and is authorized) or create."""

    model: type[Label] | type[Rule]
    input: type[io.RouterLabelInput]
    save: Any

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request) if request.method == "POST" else query_service(request)

    def list(self, request: Request) -> Response:
        rows = self.model.objects.all()
        if "service" in request.query_params:
            rows = rows.filter(service=request.query_params["service"])
        else:  # every service: only those the policy lets the caller read
            rows = self.readable(request, rows)
        return self.paginate(rows, ordering="id", render=lambda page: [selectors.label_data(r) for r in page])

    def create(self, request: Request) -> Response:
        values = validated(self.input, request.data)
        row = type(self).save(**values)
        return Response(selectors.label_data(row), status=status.HTTP_201_CREATED)


class _DefinitionDetail(RouterView):
    model: type[Label] | type[Rule]
    input: type[io.RouterLabelInput]

    def resources(self, request: Request, pk: int, **kwargs: Any):
        self.row = services.get_or_404(self.model, pk)
        found = [resource(self.row.service)]
        if request.method == "PUT":
            found += body_service(request)
        return found

    def read(self) -> Response:
        return Response(selectors.label_data(self.row))

    def change(self, request: Request, save: Any) -> Response:
        values = validated(self.input, request.data)
        return Response(selectors.label_data(save(**{self.model.__name__.lower(): self.row}, **values)))


class LabelListView(_DefinitionList):
    """Labels: ``key=value`` on a share of a version's nodes."""

    model, input = Label, io.RouterLabelInput
    save = staticmethod(services.label_save)

    @extend_schema(
        parameters=[OpenApiParameter("service", str, description="Only this service's.")],
        responses=io.RouterLabelOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=io.RouterLabelInput, responses={201: io.RouterLabelOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        return self.create(request)


class LabelDetailView(_DefinitionDetail):
    model, input = Label, io.RouterLabelInput

    @extend_schema(responses=io.RouterLabelOutput)
    def get(self, request: Request, pk: int) -> Response:
        return self.read()

    @extend_schema(request=io.RouterLabelInput, responses={200: io.RouterLabelOutput, 409: ERROR})
    def put(self, request: Request, pk: int) -> Response:
        return self.change(request, services.label_save)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.label_delete(label=self.row)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleListView(_DefinitionList):
    """Rules (A/B): a share of the requests labelled ``key=value`` to a version."""

    model, input = Rule, io.RouterRuleInput
    save = staticmethod(services.rule_save)

    @extend_schema(
        parameters=[OpenApiParameter("service", str, description="Only this service's.")],
        responses=io.RouterRuleOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=io.RouterRuleInput, responses={201: io.RouterRuleOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        return self.create(request)


class RuleDetailView(_DefinitionDetail):
    model, input = Rule, io.RouterRuleInput

    @extend_schema(responses=io.RouterRuleOutput)
    def get(self, request: Request, pk: int) -> Response:
        return self.read()

    @extend_schema(request=io.RouterRuleInput, responses={200: io.RouterRuleOutput, 409: ERROR})
    def put(self, request: Request, pk: int) -> Response:
        return self.change(request, services.rule_save)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.rule_delete(rule=self.row)
        return Response(status=status.HTTP_204_NO_CONTENT)


def limit_data(limit: RateLimit) -> dict[str, Any]:
    return {
        "id": limit.pk,
        "service": limit.service,
        "caller": limit.caller,
        "rate": limit.rate,
        "burst": limit.burst,
    }


class RateLimitListView(RouterView):
    """Rate limits per (service, caller): list, or set one (created or replaced)."""

    def resources(self, request: Request, **kwargs: Any):
        return body_service(request) if request.method == "POST" else query_service(request)

    @extend_schema(
        parameters=[OpenApiParameter("service", str, description="Only this service's.")],
        responses=io.RouterRateLimitOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        rows = RateLimit.objects.all()
        if "service" in request.query_params:
            rows = rows.filter(service=request.query_params["service"])
        else:
            rows = self.readable(request, rows)
        return self.paginate(rows, ordering="id", render=lambda page: [limit_data(r) for r in page])

    @extend_schema(
        request=io.RouterRateLimitInput,
        responses={201: io.RouterRateLimitOutput, 200: io.RouterRateLimitOutput},
    )
    def post(self, request: Request) -> Response:
        values = validated(io.RouterRateLimitInput, request.data)
        limit, created = services.rate_limit_set(**values)
        return Response(limit_data(limit), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RateLimitDetailView(RouterView):
    def resources(self, request: Request, pk: int, **kwargs: Any):
        self.limit = services.get_or_404(RateLimit, pk)
        return (resource(self.limit.service),)

    @extend_schema(responses=io.RouterRateLimitOutput)
    def get(self, request: Request, pk: int) -> Response:
        return Response(limit_data(self.limit))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        services.rate_limit_delete(limit=self.limit)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StatsView(RouterView):
    """Publish call statistics: windows per (target service, node, endpoint).

    Windows of services discovery does not know are skipped and listed; when every window names
    one, the answer is 404 ``unknown_service`` and nothing is stored.
    """

    required_scopes = {"POST": "router:report"}

    def resources(self, request: Request, **kwargs: Any):
        windows = request.data.get("windows") if isinstance(request.data, dict) else None
        if not isinstance(windows, list):
            return ()
        named = (w.get("service") for w in windows[:10_000] if isinstance(w, dict))
        names = {name for name in named if isinstance(name, str)}
        return sorted(resource(n) for n in names if services.SERVICE.matches(n))

    def policy_action(self, request: Request) -> str:
        return "read"  # reporting on a service is allowed to whoever may read its routes

    @extend_schema(request=io.RouterStatsInput, responses={202: io.RouterStatsOutput, 404: ERROR})
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"windows": ["Send {caller, windows: [...]}."]})
        caller = request.data.get("caller") or actor(request)
        if not services.CALLER.matches(caller):
            raise ValidationError({"caller": [f"A caller name: {services.CALLER.hint}."]})
        report = services.stats_ingest(caller=caller, windows=request.data.get("windows"), now=time.time())
        return Response(
            io.RouterStatsOutput({"accepted": report.accepted, "skipped": report.skipped}).data,
            status=status.HTTP_202_ACCEPTED,
        )
