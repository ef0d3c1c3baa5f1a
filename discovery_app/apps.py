from django.conf import settings

from platformsite import services


class DiscoveryAppConfig(services.ServiceConfig):
    name = "discovery_app"
    service = "discovery"
    verbose_name = "Service registry with heartbeats and watches"
    web_urls = "web_urls"
    websocket_routes = "routing"
    hot_routes = "hot"
    beat_schedule = {
        "discovery-sweep": {
            "task": "discovery_app.tasks.sweep",
            "schedule": settings.DISCOVERY_SWEEP_SECONDS,
        },
        "discovery-purge-results": {"task": "discovery_app.tasks.purge_results", "schedule": 300},
    }
