"""Who the caller is and what its credentials grant."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.access import TokenInfo, granted_scopes
from platformsite.api.permissions import IsAuthenticated
from platformsite.api.views import ServiceView


class WhoAmIView(ServiceView):
    """Who the caller is and what its credentials grant."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "subject": serializers.CharField(),
                "type": serializers.ChoiceField(["service", "user"]),
                "client_id": serializers.CharField(allow_null=True),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "expires": serializers.DateTimeField(allow_null=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        token = request.auth if isinstance(request.auth, TokenInfo) else None
        if token is not None:
            return Response(
                {
                    "subject": token.subject,
                    "type": "user" if token.user_id is not None else "service",
                    "client_id": token.client_id,
                    "scopes": sorted(token.scopes),
                    "expires": datetime.fromtimestamp(token.expires, UTC).isoformat(),
                }
            )
        return Response(
            {
                "subject": f"user:{request.user.get_username()}",
                "type": "user",
                "client_id": None,
                "scopes": sorted(granted_scopes(request)),
                "expires": None,
            }
        )
