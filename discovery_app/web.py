"""The discovery dashboard: services, a service's versions, nodes and endpoints, live."""

from __future__ import annotations

import time
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from discovery_app import selectors
from discovery_app.models import Node, Service
from platformsite.web import staff_required

MAX_SERVICES = 500


def tree(value: Any) -> SafeString:
    """A JSON value (say, a request schema) as nested lists."""
    if isinstance(value, dict):
        if not value:
            return mark_safe("<code>{}</code>")
        items = format_html_join(
            "", '<li><span class="key">{}</span>: {}</li>', ((key, tree(item)) for key, item in value.items())
        )
        return format_html('<ul class="tree">{}</ul>', items)
    if isinstance(value, list):
        if not value:
            return mark_safe("<code>[]</code>")
        items = format_html_join("", "<li>{}</li>", ((tree(item),) for item in value))
        return format_html('<ol class="tree">{}</ol>', items)
    return format_html("<code>{}</code>", repr(value) if not isinstance(value, str) else value)


def _page(request: HttpRequest, template: str, fragment: str, context: dict[str, Any]) -> HttpResponse:
    context["degraded"] = selectors.degraded_state()
    if request.GET.get("fragment") == "1":
        return render(request, fragment, context)
    return render(request, template, context)


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    names = list(selectors.listed_service_names().values_list("name", flat=True)[:MAX_SERVICES])
    services = selectors.services_summary(names)
    for service in services:  # highlighted when some of its nodes are not passing
        service["not_passing"] = service["nodes"] - service["passing"]
    context = {"services": services, "registry": selectors.registry_state()}
    return _page(request, "discovery_app/index.html", "discovery_app/_services.html", context)


@staff_required
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    versions = list(Service.objects.filter(name=name).order_by("version"))
    if not versions:
        raise Http404(name)
    nodes = list(Node.objects.filter(service__name=name).order_by("id"))
    beats = selectors.last_heartbeats([node.id for node in nodes])
    now = time.time()
    by_version: dict[int, list[dict[str, Any]]] = {service.pk: [] for service in versions}
    endpoints: dict[int, tuple[float, list]] = {}
    for node in nodes:
        last = max(beats.get(node.id, 0.0), node.last_heartbeat.timestamp())
        by_version[node.service_id].append(
            {"node": node, "last_heartbeat": selectors.iso(last), "age": max(0, round(now - last))}
        )
        registered = node.registered.timestamp()
        if node.service_id not in endpoints or registered > endpoints[node.service_id][0]:
            endpoints[node.service_id] = (registered, node.endpoints)
    context = {
        "name": name,
        "index": selectors.current_index(name),
        "versions": [
            {
                "service": service,
                "nodes": by_version[service.pk],
                "endpoints": [
                    {
                        "name": endpoint["name"],
                        "metadata": endpoint.get("metadata", {}),
                        "request": tree(endpoint.get("request")),
                        "response": tree(endpoint.get("response")),
                    }
                    for endpoint in endpoints.get(service.pk, (0, []))[1]
                ],
            }
            for service in versions
        ],
    }
    return _page(request, "discovery_app/service.html", "discovery_app/_service.html", context)
