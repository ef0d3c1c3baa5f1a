from django.apps import AppConfig


class MonitorAppConfig(AppConfig):
    name = "monitor_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "monitor"
    verbose_name = "Status, stats and healthchecks of the fleet"
