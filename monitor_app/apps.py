from django.conf import settings

from platformsite import services


class MonitorAppConfig(services.ServiceConfig):
    name = "monitor_app"
    service = "monitor"
    verbose_name = "Status, stats and healthchecks of the fleet"
    web_urls = "web_urls"
    websocket_routes = "routing"
    root_urls = "ping_urls"
    hot_routes = "hot"
    beat_schedule = {
        "monitor-tick": {"task": "monitor_app.tasks.tick", "schedule": settings.MONITOR_LOOP_SECONDS},
        "monitor-downsample": {"task": "monitor_app.tasks.downsample", "schedule": 300},
        "monitor-purge": {"task": "monitor_app.tasks.purge", "schedule": 3600},
    }

    def ready(self) -> None:
        from monitor_app.metrics import FleetCollector
        from platformsite.metrics import register_collector

        register_collector(FleetCollector())
