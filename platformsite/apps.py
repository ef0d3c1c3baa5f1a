from django.apps import AppConfig


class PlatformSiteConfig(AppConfig):
    name = "platformsite"
    verbose_name = "Micro Platform"

    def ready(self) -> None:
        from platformsite import checks  # noqa: F401  (registers the system checks)
        from platformsite.api import schema  # noqa: F401  (registers the OpenAPI extensions)
