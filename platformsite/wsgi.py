"""WSGI entry point: the production HTTP workers (websockets are served by the ASGI workers)."""

import os

from django.core.wsgi import get_wsgi_application

from platformsite.gc import FreezeAfterWarmup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
django_application = get_wsgi_application()

from platformsite.hotpath import with_hot_path  # noqa: E402  (its routes need the apps loaded)

application = FreezeAfterWarmup(with_hot_path(django_application))
