"""WSGI entry point: the production HTTP workers (websockets are served by the ASGI workers)."""

import os

from django.core.wsgi import get_wsgi_application

from platformsite.gc import FreezeAfterWarmup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
application = FreezeAfterWarmup(get_wsgi_application())
