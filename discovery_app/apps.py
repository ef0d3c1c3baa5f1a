from django.apps import AppConfig


class DiscoveryAppConfig(AppConfig):
    name = "discovery_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "discovery"
    verbose_name = "Service registry with heartbeats and watches"
