"""The baseline: a bare Django view returning JSON, with no apps, no middleware and no auth.

This module is at once the settings module, the URLconf and the WSGI entry point of the
baseline server (``granian --interface wsgi tests.bench.bare:application``).  ``GET /bare/<n>``
answers a JSON object of exactly ``n`` bytes (or the smallest object it can build, if ``n`` is
smaller), so each scenario is compared with a bare view returning a body of the same size.
"""

from __future__ import annotations

import os
from functools import cache

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, JsonResponse
from django.urls import path

# --- Settings -------------------------------------------------------------------------------------

DEBUG = False
SECRET_KEY = os.environ.get("BENCH_BARE_SECRET_KEY", "bench-bare-view-" + "k" * 50)
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
ROOT_URLCONF = __name__
DATABASES: dict[str, dict] = {}
USE_TZ = True
USE_I18N = False
LOGGING_CONFIG = None

# --- The view -------------------------------------------------------------------------------------

_EMPTY = {"ok": True, "pad": ""}


@cache
def payload(size: int) -> dict[str, object]:
    """A JSON object that ``JsonResponse`` renders in exactly ``size`` bytes (when it can)."""
    base = len(DjangoJSONEncoder().encode(_EMPTY).encode())
    return {"ok": True, "pad": "x" * max(size - base, 0)}


def bare(request: HttpRequest, size: int) -> JsonResponse:
    return JsonResponse(payload(min(size, 1 << 20)))


urlpatterns = [path("bare/<int:size>", bare)]

# --- WSGI entry point -----------------------------------------------------------------------------

os.environ["DJANGO_SETTINGS_MODULE"] = __name__

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
