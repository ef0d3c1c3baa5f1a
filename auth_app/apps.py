from django.apps import AppConfig


class AuthAppConfig(AppConfig):
    name = "auth_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "auth"
    verbose_name = "Authentication and authorization: accounts, OAuth2, roles and policy rules"
