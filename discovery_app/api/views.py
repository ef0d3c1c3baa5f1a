"""The discovery service's REST API: registry reads and writes, heartbeats, blocking queries."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from discovery_app import selectors, services
from discovery_app.api import serializers as io
from discovery_app.api.filters import ResultFilter
from discovery_app.models import Node, Result
from monitor_app.selectors import failing_nodes
from platformsite.api.errors import Conflict
from platformsite.api.filters import filter_parameters, filtered
from platformsite.api.schema import ERROR
from platformsite.api.validators import parse_flag, parse_wait
from platformsite.api.views import ServiceView, one_or_404, validated
from platformsite.hotpath import etag_matches, not_modified

PREFIX = re.compile(r"^[A-Za-z0-9._-]{0,200}\Z")

#: A blocking query's wait when ``wait`` is not given (capped by DISCOVERY_MAX_WAIT_SECONDS).
DEFAULT_WAIT_SECONDS = 5 * 60.0


def parse_labels(values: list[str]) -> list[tuple[str, str]]:
    labels = []
    for value in values:
        key, sep, wanted = value.partition(":")
        if not sep or not key:
            raise ValidationError({"label": [f"Use key:value, got {value!r}."]})
        labels.append((key, wanted))
    return labels


def service_resource(name: str) -> str:
    return f"discovery:{name}"


class DiscoveryView(ServiceView):
    """Base of the discovery views: a service name is the policy resource ``discovery:<name>``."""

    service = "discovery"

    def allowed(self, request: Request, action: str):
        allows = self.allows(request, action)
        return lambda name: allows(service_resource(name))


class ServiceListView(DiscoveryView):
    """Services with their versions and node counts (cursor pages, by name)."""

    @extend_schema(responses=io.ServiceSummaryOutput(many=True))
    def get(self, request: Request) -> Response:
        names = selectors.listed_service_names()
        if prefix := request.query_params.get("prefix"):
            if not PREFIX.match(prefix):
                raise ValidationError({"prefix": ["Letters, digits, '.', '_' or '-' (the start of a name)."]})
            names = names.filter(name__startswith=prefix)
        allowed = self.allowed(request, "read")  # only the services policy lets the caller see

        def visible(rows: list[Any]) -> list[Any]:
            shown = [row.name for row in rows if allowed(row.name)]
            return io.ServiceSummaryOutput(selectors.services_summary(shown), many=True).data

        return self.paginate(names, ordering="name", render=visible)


class ServiceDetailView(DiscoveryView):
    """A service's versions and nodes, from the read cache; a blocking query with ``?index=N``."""

    def resources(self, request: Request, name: str, **kwargs: Any):
        if not services.SERVICE_NAME.match(name):  # no service (nor policy rule) can have this name
            raise NotFound(f"No service named {name!r} is registered.")
        return (service_resource(name),)

    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, description="Only this version."),
            OpenApiParameter("label", str, many=True, description="key:value; nodes with all labels."),
            OpenApiParameter(
                "passing", bool, description="Only passing nodes (alive, no critical monitor check down)."
            ),
            OpenApiParameter("index", int, description="Block until the service's index passes this."),
            OpenApiParameter("wait", str, description="Longest block, e.g. '30s' (max 60 s)."),
        ],
        responses={200: io.ServiceDocumentOutput, 304: None},
    )
    def get(self, request: Request, name: str) -> HttpResponse:
        params = request.query_params
        version = params.get("version")
        labels = parse_labels(params.getlist("label"))
        passing = parse_flag(params, "passing")
        # read by a blocking query (``index``); refused if unreadable, with or without one
        wait = parse_wait(
            params.get("wait"), default=DEFAULT_WAIT_SECONDS, maximum=settings.DISCOVERY_MAX_WAIT_SECONDS
        )
        if "index" in params:
            try:
                wanted = int(params["index"])
            except ValueError:
                wanted = -1
            if wanted < 0:
                raise ValidationError({"index": ["A whole number, 0 or more (an X-Discovery-Index)."]})
            woken_at = self.block(name, wanted, wait)
        else:
            woken_at = 0
        entry = selectors.service_entry(name, at_least=woken_at)
        if not entry.exists:
            raise NotFound(f"No service named {name!r} is registered.")
        body, etag = entry.body, entry.etag
        if version is not None or labels or passing:
            failing = failing_nodes(name) if passing else frozenset()
            document = selectors.filter_document(
                entry.document(), version=version, labels=labels, passing=passing, failing=failing
            )
            if version is not None and not document["versions"]:
                raise NotFound(f"Service {name!r} has no version {version!r}.")
            variant = f"{version}|{sorted(labels)}|{passing}|{sorted(failing)}"
            body = json.dumps(document, separators=(",", ":")).encode()
            etag = selectors.make_etag(name, entry.index, variant)
        if etag_matches(request.headers.get("If-None-Match"), etag):
            response = not_modified(etag)
        else:
            response = HttpResponse(body, content_type="application/json")
            response["ETag"] = etag
        response["X-Discovery-Index"] = str(entry.index)
        return response

    def block(self, name: str, wanted: int, wait: float) -> int:
        """Wait until the service's index passes ``wanted`` (or ``wait`` runs out); the index seen."""
        deadline = time.monotonic() + wait
        poll = settings.DISCOVERY_BLOCKING_POLL_SECONDS
        while (index := selectors.current_index(name)) <= wanted:
            left = deadline - time.monotonic()
            if left <= 0:
                return index
            time.sleep(min(poll, left))
        return index


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


NODES = Node.objects.select_related("service")


class NodeListView(DiscoveryView):
    """Register a node (POST; ``id`` optional, generated when missing)."""

    def resources(self, request: Request, **kwargs: Any):
        return registered_service(request)

    @extend_schema(request=io.RegisterInput, responses={201: io.NodeOutput, 200: io.NodeOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = validated(io.RegisterInput, request.data)
        node_id = uuid.uuid4().hex if data["id"] is None else data["id"]
        return register(data, node_id, self.allows(request, "read"))


def registered_service(request: Request) -> tuple[str, ...]:
    """The resource a registration writes: its body's service (a name no rule can hold is refused
    by node_register, with the other bad fields)."""
    name = request.data.get("service") if isinstance(request.data, dict) else None
    return (service_resource(name),) if isinstance(name, str) and services.SERVICE_NAME.match(name) else ()


def register(data: dict[str, Any], node_id: str, readable: Callable[[str], bool]) -> Response:
    """Register; ``readable(resource)``: may the caller read a service (a node id taken under a
    service it may not read is refused without naming that service)."""
    try:
        node, created = services.node_register(**_registration(data, node_id))
    except Conflict as exc:
        other = exc.details.get("service") if exc.code == "node_id_taken" else None
        if other is None or readable(service_resource(other)):
            raise
        raise Conflict(
            f"Node {node_id!r} is registered under another service.", "node_id_taken", {"id": node_id}
        ) from None
    # as stored; as this call registered it if another call deregistered it since
    stored = NODES.filter(id=node.id).first() or node
    body = io.NodeOutput(selectors.node_detail(stored)).data
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class NodeDetailView(DiscoveryView):
    """One node: read it, register (or re-register) it under this id, deregister it."""

    def resources(self, request: Request, node_id: str, **kwargs: Any):
        if request.method == "PUT":
            return registered_service(request)
        if not services.NODE_ID.match(node_id):  # no node can have this id (NUL would fail PostgreSQL)
            raise NotFound(f"No node {node_id!r} is registered.")
        self.node = one_or_404(NODES, f"No node {node_id!r} is registered.", id=node_id)
        return (service_resource(self.node.service.name),)

    @extend_schema(responses=io.NodeOutput)
    def get(self, request: Request, node_id: str) -> Response:
        return Response(io.NodeOutput(selectors.node_detail(self.node)).data)

    @extend_schema(request=io.RegisterInput, responses={201: io.NodeOutput, 200: io.NodeOutput, 409: ERROR})
    def put(self, request: Request, node_id: str) -> Response:
        data = validated(io.RegisterInput, request.data)
        if data["id"] not in (None, node_id):
            raise ValidationError({"id": ["Differs from the id in the URL."]})
        return register(data, node_id, self.allows(request, "read"))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, node_id: str) -> Response:
        services.node_deregister(node_id=self.node.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HeartbeatView(DiscoveryView):
    """Renew a node's TTL; 404 ``node_not_registered`` tells the caller to register again."""

    def resources(self, request: Request, node_id: str, **kwargs: Any):
        if not services.NODE_ID.match(node_id):  # no node has this id: no cache key is built from it
            raise services.NodeNotRegistered()
        return ()  # the node's service is known once its entry is read: node_heartbeat checks it

    @extend_schema(
        request=None,
        responses=io.HeartbeatOutput,
    )
    def post(self, request: Request, node_id: str) -> Response:
        renewed = services.node_heartbeat(node_id=node_id, allowed=self.allowed(request, "write"))
        return Response(io.HeartbeatOutput(renewed).data)


class BatchHeartbeatView(DiscoveryView):
    """Renew many nodes in one call (an agent renewing the nodes of its host)."""

    @extend_schema(
        request=io.BatchHeartbeatInput,
        responses=io.HeartbeatsOutput,
    )
    def post(self, request: Request) -> Response:
        data = validated(io.BatchHeartbeatInput, request.data)
        renewed = services.node_heartbeats(node_ids=data["nodes"], allowed=self.allowed(request, "write"))
        return Response(io.HeartbeatsOutput(renewed).data)


class ResultListView(DiscoveryView):
    """The watch history (the last hour): ``?service=`` (required) and ``?since=<index>``."""

    def resources(self, request: Request, **kwargs: Any):
        name = request.query_params.get("service")
        if not name:
            raise ValidationError({"service": ["Required."]})
        if not services.SERVICE_NAME.match(name):
            raise ValidationError({"service": ["Use 1-200 letters, digits, '.', '_' or '-'."]})
        return (service_resource(name),)

    @extend_schema(
        parameters=[OpenApiParameter("service", str, required=True), *filter_parameters(ResultFilter)],
        responses=io.ResultOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        name = request.query_params["service"]
        results = filtered(ResultFilter, request, Result.objects.filter(service=name), also=("service",))
        return self.paginate(
            results,
            ordering="index",
            render=lambda page: io.ResultOutput([services.result_data(r) for r in page], many=True).data,
        )


class RegistryView(DiscoveryView):
    """The registry's health: node counts and the safety valve's state."""

    @extend_schema(responses=io.RegistryStateOutput)
    def get(self, request: Request) -> Response:
        return Response(io.RegistryStateOutput(selectors.registry_state()).data)
