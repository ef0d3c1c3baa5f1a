from platformsite import services


class ConfigAppConfig(services.ServiceConfig):
    name = "config_app"
    service = "config"
    verbose_name = "Namespaced, versioned, layered configuration"
    extra_scopes = {"config:secrets": "Read secret configuration values in clear"}
    web_urls = "web_urls"
    websocket_routes = "routing"
    hot_routes = "hot"
