"""Root URLs: health, metrics, the OpenAPI schema, OAuth2, and each served service's declared URLs.

The paths are contracts outside tools depend on (``/o/``, ``/api/v1/<service>/``, ``/healthz``,
``/readyz``, ``/metrics``, ``/api/schema/``); a service's own root-level contracts (tracing's
``/v1/traces``) come from its declaration's ``root_urls``.
"""

from django.conf import settings
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from auth_app import views as auth_views
from auth_app.forms import StaffSignInForm
from platformsite import ops
from platformsite.api.docs import DocsView, SchemaView
from platformsite.services import served_services

handler400 = "platformsite.api.errors.bad_request"
handler403 = "platformsite.api.errors.permission_denied"
handler404 = "platformsite.api.errors.page_not_found"
handler500 = "platformsite.api.errors.server_error"

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="docs"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's, the API docs).
    path("favicon.ico", RedirectView.as_view(url=static("platformsite/favicon.svg"), permanent=True)),
]

for service in served_services():
    api = include((service.api_urls, service.app_label), namespace=service.name)
    urlpatterns.append(path(f"api/v1/{service.name}/", api))
    if service.config.root_urls:
        urlpatterns.append(path("", include(f"{service.config.name}.{service.config.root_urls}")))

if not settings.PLATFORM_SERVICE or settings.PLATFORM_SERVICE == "auth":
    # The platform's guarded versions of the token endpoints, and django-oauth-toolkit's
    # authorization endpoint; not its device flow, a grant no account can have.
    oauth_patterns = [
        path("token/", auth_views.TokenView.as_view(), name="token"),
        path("revoke_token/", auth_views.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect/", auth_views.IntrospectView.as_view(), name="introspect"),
        path(".well-known/jwks.json", auth_views.jwks, name="jwks-info"),
        # django-oauth-toolkit's name for it: the RFC 9207 `iss` of its authorization responses is
        # this URL's base (the metadata's issuer); under another name it fell back to the site root
        path(
            ".well-known/oauth-authorization-server", auth_views.server_metadata, name="oauth-server-metadata"
        ),
        path("authorize/", auth_views.AuthorizationView.as_view(), name="authorize"),
        path("login/", auth_views.UserLoginView.as_view(), name="login"),
    ]
    urlpatterns += [
        path("o/", include((oauth_patterns, "oauth2_provider"), namespace="oauth2_provider")),
        # RFC 8414's own place for the metadata of the issuer <host>/o, where its clients look first
        path(".well-known/oauth-authorization-server/o", auth_views.server_metadata),
    ]

if not settings.PLATFORM_SERVICE or settings.PLATFORM_SERVICE_WEB:
    urlpatterns += [
        path("ui/", include("platformsite.web_urls")),
        path("", RedirectView.as_view(pattern_name="ui:index", permanent=False)),
    ]
if not settings.PLATFORM_SERVICE:
    admin.site.site_header = admin.site.site_title = "Micro Platform admin"
    admin.site.site_url = "/ui/"
    admin.site.login_form = StaffSignInForm
    urlpatterns.append(path("admin/", admin.site.urls))
