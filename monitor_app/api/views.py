"""The monitor service's REST API."""

from __future__ import annotations

import time

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    """Answers at once: a client's check that the platform is reachable and its token works."""

    service = "monitor"
    pagination_class = None

    @extend_schema(
        responses=inline_serializer(
            "Pong",
            {
                "ok": serializers.BooleanField(),
                "time": serializers.FloatField(),
                "request_id": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "ok": True,
                "time": round(time.time(), 3),
                "request_id": getattr(request._request, "request_id", ""),
            }
        )
