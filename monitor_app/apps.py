from platformsite import services


class MonitorAppConfig(services.ServiceConfig):
    name = "monitor_app"
    service = "monitor"
    verbose_name = "Status, stats and healthchecks of the fleet"
    built = False
