from platformsite import services


class DbproxyAppConfig(services.ServiceConfig):
    name = "dbproxy_app"
    service = "db"
    verbose_name = "CRUD database proxy over pluggable backends"
    web_urls = "web_urls"
    hot_routes = "hot"
    extra_scopes = {"db:manage": "Register, change and remove databases; drop tables; row policies"}
