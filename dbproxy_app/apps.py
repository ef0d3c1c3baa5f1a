from django.apps import AppConfig


class DbproxyAppConfig(AppConfig):
    name = "dbproxy_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "db"
    verbose_name = "CRUD database proxy over pluggable backends"
