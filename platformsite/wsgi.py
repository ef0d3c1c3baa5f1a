"""WSGI entry point: the production HTTP workers (websockets are served by the ASGI workers)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
application = get_wsgi_application()
