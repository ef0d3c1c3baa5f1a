from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    name = "config_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "config"
    verbose_name = "Namespaced, versioned, layered configuration"
