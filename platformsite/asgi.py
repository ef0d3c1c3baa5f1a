"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from platformsite.middleware import refuse_bodies_early  # noqa: E402
from platformsite.routing import websocket_urlpatterns  # noqa: E402
from platformsite.ws import websocket_stack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": refuse_bodies_early(django_asgi_app),
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns())),
    }
)

if os.environ.get("PLATFORM_INPROCESS_BEAT") == "1":
    # The embedded mode (``platform run``): this process also runs the background jobs.
    from platformsite.background import worker

    worker.start(beat=True)

if os.environ.get("PLATFORM_SERVICE") and os.environ.get("PLATFORM_SERVICE_PORT"):
    # ``manage.py runservice NAME``: register ``platform.NAME`` in discovery and heartbeat it.
    # Heartbeats live in the shared cache, so this needs the distributed mode (REDIS_URL).
    from django.conf import settings

    if settings.REDIS_URL:
        from discovery_app.selfregister import SelfRegistration

        address = os.environ.get("PLATFORM_SERVICE_ADDRESS", "127.0.0.1")
        if address in {"0.0.0.0", "::"}:  # noqa: S104 (a bind-all address is not one to advertise)
            import socket

            address = socket.gethostbyname(socket.gethostname())
        SelfRegistration(
            name=os.environ["PLATFORM_SERVICE"],
            address=address,
            port=int(os.environ["PLATFORM_SERVICE_PORT"]),
        ).start()
    else:
        import logging

        logging.getLogger(__name__).warning(
            "runservice: not registering in discovery: heartbeats need the shared cache (set REDIS_URL)"
        )
