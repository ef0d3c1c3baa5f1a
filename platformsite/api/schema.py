"""OpenAPI descriptions of the platform's authentication classes (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "platformsite.api.authentication.BearerTokenAuthentication"
    name = "oauth2Bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An OAuth2 access token from /o/token/ carrying the service's scopes.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "platformsite.api.authentication.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
