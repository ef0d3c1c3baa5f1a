from django.apps import AppConfig


class RouterAppConfig(AppConfig):
    name = "router_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "router"
    verbose_name = "Global routing decisions: weights, labels, ejection"
