"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from platformsite.routing import websocket_urlpatterns  # noqa: E402
from platformsite.ws import websocket_stack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns())),
    }
)

if os.environ.get("PLATFORM_INPROCESS_BEAT") == "1":
    # The embedded mode (``platform run``): this process also runs the background jobs.
    from platformsite.background import worker

    worker.start(beat=True)
