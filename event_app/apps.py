from django.apps import AppConfig


class EventAppConfig(AppConfig):
    name = "event_app"
    #: The service name used in URLs, scopes, the CLI and runservice.
    service = "events"
    verbose_name = "Platform event stream (CloudEvents), search and subscriptions"
