"""API views every service shares."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from platformsite.services import VERSION, service_by_name


def _routes(patterns: list[Any], prefix: str = "") -> list[str]:
    routes: list[str] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            routes += _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.append(prefix + str(pattern.pattern))
    return routes


def service_routes(name: str) -> list[str]:
    """The routes of one service's API, e.g. ``["/api/v1/config/", ...]``, sorted."""
    for pattern in get_resolver().url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == name:
            return sorted("/" + route for route in _routes(pattern.url_patterns, str(pattern.pattern)))
    return []


class ServiceRootView(APIView):
    """The index of one service's API: what it is and the routes it serves."""

    service = ""

    @extend_schema(
        responses=inline_serializer(
            "ServiceIndex",
            {
                "service": serializers.CharField(),
                "description": serializers.CharField(),
                "version": serializers.CharField(),
                "routes": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        info = service_by_name(self.service)
        return Response(
            {
                "service": info.name,
                "description": info.description,
                "version": VERSION,
                "routes": service_routes(self.service),
            }
        )
