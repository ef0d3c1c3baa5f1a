"""``/api/schema/`` and ``/api/docs/``: open, or behind login (``PLATFORM_API_DOCS_PUBLIC``).

In production the schema and the Swagger UI answer only a signed-in dashboard user (session) or a
caller with a valid bearer token (any scope): the schema maps every route and parameter, which an
anonymous visitor has no need of.  ``PLATFORM_API_DOCS_PUBLIC=true`` opens them; elsewhere
(``embedded``, ``test``) they are open by default.  The setting is read at each request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer

from platformsite.api.authentication import BearerTokenAuthentication, SessionAuthentication


class _BehindLogin:
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]

    def get_permissions(self) -> list[Any]:
        return [AllowAny()] if settings.PLATFORM_API_DOCS_PUBLIC else [IsAuthenticated()]


class SchemaView(_BehindLogin, SpectacularAPIView):
    """The OpenAPI schema: 401 in the error shape without a session or token when not public."""

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:  # an error as JSON, whichever schema format was asked for
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), "application/json"
        return response


class DocsView(_BehindLogin, SpectacularSwaggerView):
    """The Swagger UI: a browser without a session is sent to the dashboard's login page."""

    def get_permissions(self) -> list[Any]:
        return [AllowAny()]  # the redirect below instead of a JSON 401

    @extend_schema(exclude=True)
    def get(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not settings.PLATFORM_API_DOCS_PUBLIC and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return super().get(request, *args, **kwargs)
