from django.conf import settings

from platformsite import services


class EventAppConfig(services.ServiceConfig):
    name = "event_app"
    service = "events"
    verbose_name = "Platform event stream (CloudEvents), search and subscriptions"
    web_urls = "web_urls"
    websocket_routes = "routing"
    hot_routes = "hot"
    ingest_paths = ("/api/v1/events/",)
    beat_schedule = {
        "events-deliver-due": {
            "task": "event_app.tasks.deliver_due",
            "schedule": settings.EVENTS_DELIVER_DUE_INTERVAL,
        },
        "events-rollup-counts": {"task": "event_app.tasks.rollup_counts", "schedule": 300},
        "events-purge-expired": {
            "task": "event_app.tasks.purge_expired",
            "schedule": settings.EVENTS_PURGE_INTERVAL,
        },
    }
