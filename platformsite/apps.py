import logging

from django.apps import AppConfig


class PlatformSiteConfig(AppConfig):
    name = "platformsite"
    verbose_name = "Micro Platform"

    def ready(self) -> None:
        from django.conf import settings

        from platformsite import checks  # noqa: F401  (registers the system checks)
        from platformsite.api import schema  # noqa: F401  (registers the OpenAPI extensions)
        from platformsite.services import beat_schedule

        # The services' periodic tasks, under the operator's own CELERY_BEAT_SCHEDULE entries.
        settings.CELERY_BEAT_SCHEDULE = {**beat_schedule(), **settings.CELERY_BEAT_SCHEDULE}
        # Python's warnings (Django's "StreamingHttpResponse must consume synchronous iterators"
        # under ASGI, deprecations) go through logging: JSON lines like every other log line.
        logging.captureWarnings(True)
