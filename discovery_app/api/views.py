"""The discovery service's REST API: registry reads and writes, heartbeats, blocking queries."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auth_app.selectors import is_request_allowed
from discovery_app import selectors, services
from discovery_app.api import serializers as io
from discovery_app.models import Node, Result
from platformsite.api.errors import Denied
from platformsite.api.pagination import CursorPagination

WAIT = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?$")
TRUE = {"1", "true", "yes"}
PREFIX = re.compile(r"^[A-Za-z0-9._-]{0,200}\Z")


def parse_wait(raw: str | None) -> float:
    if raw is None or raw == "":
        return 5 * 60.0  # capped below
    match = WAIT.match(raw.strip())
    if not match:
        raise ValidationError({"wait": ["A duration such as '30s', '500ms', '1m' or '10'."]})
    value = float(match["value"])
    return value / 1000 if match["unit"] == "ms" else value * 60 if match["unit"] == "m" else value


def parse_labels(values: list[str]) -> list[tuple[str, str]]:
    labels = []
    for value in values:
        key, sep, wanted = value.partition(":")
        if not sep or not key:
            raise ValidationError({"label": [f"Use key:value, got {value!r}."]})
        labels.append((key, wanted))
    return labels


class DiscoveryView(APIView):
    service = "discovery"

    def authorize(self, request: Request, service_name: str, action: str) -> None:
        decision = is_request_allowed(request, resource=f"discovery:{service_name}", action=action)
        if not decision.allowed:
            raise Denied(f"Not allowed to {action} service {service_name!r}.", "policy_denied")

    def allowed(self, request: Request, action: str):
        return lambda name: is_request_allowed(request, resource=f"discovery:{name}", action=action).allowed

    def paginate(self, queryset, request: Request, ordering: str, render) -> Response:
        paginator = CursorPagination()
        paginator.ordering = ordering
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(render(page))


class ServiceListView(DiscoveryView):
    """Services with their versions and node counts (cursor pages, by name)."""

    @extend_schema(
        responses=inline_serializer(
            "ServiceSummary",
            {
                "name": serializers.CharField(),
                "index": serializers.IntegerField(),
                "nodes": serializers.IntegerField(),
                "passing": serializers.IntegerField(),
                "versions": serializers.ListField(),
            },
            many=True,
        )
    )
    def get(self, request: Request) -> Response:
        names = selectors.listed_service_names()
        if prefix := request.query_params.get("prefix"):
            if not PREFIX.match(prefix):
                raise ValidationError({"prefix": ["Letters, digits, '.', '_' or '-' (the start of a name)."]})
            names = names.filter(name__startswith=prefix)
        return self.paginate(
            names, request, "name", lambda rows: selectors.services_summary([row.name for row in rows])
        )


class ServiceDetailView(DiscoveryView):
    """A service's versions and nodes, from the read cache; a blocking query with ``?index=N``."""

    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, description="Only this version."),
            OpenApiParameter("label", str, many=True, description="key:value; nodes with all labels."),
            OpenApiParameter("passing", bool, description="Only passing nodes."),
            OpenApiParameter("index", int, description="Block until the service's index passes this."),
            OpenApiParameter("wait", str, description="Longest block, e.g. '30s' (max 60 s)."),
        ],
        responses={200: OpenApiTypes.OBJECT, 304: None},
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        if not services.SERVICE_NAME.match(name):  # no service (nor policy rule) can have this name
            raise NotFound(f"No service named {name!r} is registered.")
        self.authorize(request, name, "read")
        params = request.query_params
        version = params.get("version")
        labels = parse_labels(params.getlist("label"))
        passing = params.get("passing", "").lower() in TRUE
        if "index" in params:
            try:
                wanted = int(params["index"])
            except ValueError as exc:
                raise ValidationError({"index": ["An integer."]}) from exc
            wait = min(parse_wait(params.get("wait")), settings.DISCOVERY_MAX_WAIT_SECONDS)
            self.block(name, wanted, wait)
        entry = selectors.service_entry(name)
        if not entry.exists:
            raise NotFound(f"No service named {name!r} is registered.")
        body, etag = entry.body, entry.etag
        if version is not None or labels or passing:
            document = selectors.filter_document(
                entry.document(), version=version, labels=labels, passing=passing
            )
            if version is not None and not document["versions"]:
                raise NotFound(f"Service {name!r} has no version {version!r}.")
            variant = f"{version}|{sorted(labels)}|{passing}"
            body = json.dumps(document, separators=(",", ":")).encode()
            etag = selectors.make_etag(name, entry.index, variant)
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
        else:
            response = HttpResponse(body, content_type="application/json")
        response["ETag"] = etag
        response["X-Discovery-Index"] = str(entry.index)
        return response

    def block(self, name: str, wanted: int, wait: float) -> None:
        deadline = time.monotonic() + wait
        poll = settings.DISCOVERY_BLOCKING_POLL_SECONDS
        while selectors.current_index(name) <= wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(poll, left))


def _registration(data: dict[str, Any], node_id: str) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "service": data["service"],
        "version": data["version"],
        "address": data["address"],
        "port": data["port"],
        "metadata": data["metadata"],
        "endpoints": data["endpoints"],
        "service_metadata": data["service_metadata"],
        "interval": data["interval"],
        "ttl": data["ttl"],
        "deregister_after": data["deregister_after"],
    }


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


NODES = Node.objects.select_related("service")


class NodeListView(DiscoveryView):
    """Register a node (POST; ``id`` optional, generated when missing)."""

    @extend_schema(request=io.RegisterInput, responses={201: io.NodeOutput, 200: io.NodeOutput})
    def post(self, request: Request) -> Response:
        data = _validated(io.RegisterInput, request.data)
        return register(self, request, data, data.get("id") or uuid.uuid4().hex)


def register(view: DiscoveryView, request: Request, data: dict[str, Any], node_id: str) -> Response:
    # A name no policy rule can hold is refused by node_register, with the other bad fields.
    if services.SERVICE_NAME.match(data["service"]):
        view.authorize(request, data["service"], "write")
    node, created = services.node_register(**_registration(data, node_id))
    body = selectors.node_detail(NODES.get(id=node.id))
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class NodeDetailView(DiscoveryView):
    """One node: read it, register (or re-register) it under this id, deregister it."""

    def get_node(self, request: Request, node_id: str, action: str) -> Node:
        if not services.NODE_ID.match(node_id):  # no node can have this id (NUL would fail PostgreSQL)
            raise NotFound(f"No node {node_id!r} is registered.")
        node = get_object_or_404(NODES, id=node_id)
        self.authorize(request, node.service.name, action)
        return node

    @extend_schema(responses=io.NodeOutput)
    def get(self, request: Request, node_id: str) -> Response:
        return Response(selectors.node_detail(self.get_node(request, node_id, "read")))

    @extend_schema(request=io.RegisterInput, responses={201: io.NodeOutput, 200: io.NodeOutput})
    def put(self, request: Request, node_id: str) -> Response:
        data = _validated(io.RegisterInput, request.data)
        if data.get("id") not in (None, node_id):
            raise ValidationError({"id": ["Differs from the id in the URL."]})
        return register(self, request, data, node_id)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, node_id: str) -> Response:
        node = self.get_node(request, node_id, "write")
        services.node_deregister(node_id=node.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HeartbeatView(DiscoveryView):
    """Renew a node's TTL; 404 ``node_not_registered`` tells the caller to register again."""

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "Heartbeat",
            {
                "id": serializers.CharField(),
                "service": serializers.CharField(),
                "ttl": serializers.IntegerField(),
                "renewed": serializers.CharField(),
            },
        ),
    )
    def post(self, request: Request, node_id: str) -> Response:
        return Response(services.node_heartbeat(node_id=node_id, allowed=self.allowed(request, "write")))


class BatchHeartbeatView(DiscoveryView):
    """Renew many nodes in one call (an agent renewing the nodes of its host)."""

    @extend_schema(
        request=io.BatchHeartbeatInput,
        responses=inline_serializer(
            "Heartbeats",
            {
                "renewed": serializers.ListField(child=serializers.CharField()),
                "not_registered": serializers.ListField(child=serializers.CharField()),
                "denied": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        data = _validated(io.BatchHeartbeatInput, request.data)
        return Response(
            services.node_heartbeats(node_ids=data["nodes"], allowed=self.allowed(request, "write"))
        )


class ResultListView(DiscoveryView):
    """The watch history (the last hour): ``?service=`` (required) and ``?since=<index>``."""

    @extend_schema(
        parameters=[OpenApiParameter("service", str, required=True), OpenApiParameter("since", int)],
        responses=io.ResultOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        name = request.query_params.get("service")
        if not name:
            raise ValidationError({"service": ["Required."]})
        if not services.SERVICE_NAME.match(name):
            raise ValidationError({"service": ["Use 1-200 letters, digits, '.', '_' or '-'."]})
        self.authorize(request, name, "read")
        results = Result.objects.filter(service=name)
        if since := request.query_params.get("since"):
            try:
                results = results.filter(index__gt=int(since))
            except ValueError as exc:
                raise ValidationError({"since": ["An integer."]}) from exc
        return self.paginate(
            results, request, "index", lambda page: [services.result_data(result) for result in page]
        )


class RegistryView(DiscoveryView):
    """The registry's health: node counts and the safety valve's state."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(selectors.registry_state())
