"""Root URLs.  The paths here are contracts outside tools depend on (see DESIGN.md)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from oauth2_provider import urls as oauth2_urls

from auth_app.views import RevokeTokenView
from platformsite import ops
from platformsite.services import served_services

handler400 = "platformsite.api.errors.bad_request"
handler403 = "platformsite.api.errors.permission_denied"
handler404 = "platformsite.api.errors.page_not_found"
handler500 = "platformsite.api.errors.server_error"

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns += [
    path(f"api/v1/{service.name}/", include((service.api_urls, service.app_label), namespace=service.name))
    for service in served_services()
]

if not settings.PLATFORM_SERVICE or settings.PLATFORM_SERVICE == "auth":
    oauth_patterns = [
        path("revoke_token/", RevokeTokenView.as_view(), name="revoke-token"),
        *oauth2_urls.base_urlpatterns,
        *oauth2_urls.oidc_urlpatterns,
    ]
    urlpatterns.append(path("o/", include((oauth_patterns, "oauth2_provider"), namespace="oauth2_provider")))

if not settings.PLATFORM_SERVICE or settings.PLATFORM_SERVICE_WEB:
    urlpatterns += [
        path("ui/", include("platformsite.web_urls")),
        path("", RedirectView.as_view(pattern_name="ui:index", permanent=False)),
    ]
if not settings.PLATFORM_SERVICE:
    urlpatterns.append(path("admin/", admin.site.urls))
