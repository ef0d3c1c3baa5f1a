from platformsite import services


class RouterAppConfig(services.ServiceConfig):
    name = "router_app"
    service = "router"
    verbose_name = "Global routing decisions: weights, labels, ejection"
    built = False
