from django.apps import AppConfig


class TraceAppConfig(AppConfig):
    name = "trace_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "trace"
    verbose_name = "Distributed tracing: spans, traces, dependencies"
