from django.conf import settings

from platformsite import services


class RouterAppConfig(services.ServiceConfig):
    name = "router_app"
    service = "router"
    verbose_name = "Global routing decisions: weights, labels, ejection"
    extra_scopes = {"router:report": "Publish call statistics to the router"}
    web_urls = "web_urls"
    websocket_routes = "routing"
    hot_routes = "hot"
    beat_schedule = {
        "router-evaluate": {"task": "router_app.tasks.evaluate", "schedule": settings.ROUTER_TICK_SECONDS},
        "router-prune": {"task": "router_app.tasks.prune", "schedule": 60},
    }
