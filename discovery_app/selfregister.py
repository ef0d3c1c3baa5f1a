"""Self-registration of the platform's own services (``manage.py runservice <name>``).

The process serving one platform service registers it as ``platform.<name>`` (version: the
platform's), with one endpoint per API route, and heartbeats it from a daemon thread through the
same service functions the API uses (so the heartbeats cost no database write either).  If the
registry forgets the node (expired while the process was paused), the next beat registers it
again; at exit the node is deregistered.

    from discovery_app.selfregister import SelfRegistration
    SelfRegistration(name="config", address="127.0.0.1", port=8001).start()
"""

from __future__ import annotations

import atexit
import logging
import socket
import threading
from typing import Any

from django.db import close_old_connections

from discovery_app import services
from platformsite import localstate
from platformsite.api.views import service_routes
from platformsite.services import VERSION

log = logging.getLogger(__name__)


def platform_endpoints(name: str) -> list[dict[str, Any]]:
    """One endpoint per route of the service's API (``{name: "/api/v1/<name>/...", metadata}``)."""
    return [{"name": route, "metadata": {"protocol": "http"}} for route in service_routes(name)]


class SelfRegistration:
    """Registers ``platform.<name>`` and heartbeats it every ``interval`` seconds."""

    def __init__(self, *, name: str, address: str, port: int, interval: int = 10, node_id: str | None = None):
        self.name = name
        self.service = f"platform.{name}"
        self.address = address
        self.port = port
        self.interval = interval
        self.node_id = node_id or f"platform.{name}-{socket.gethostname()}-{port}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> None:
        services.node_register(
            node_id=self.node_id,
            service=self.service,
            version=VERSION,
            address=self.address,
            port=self.port,
            metadata={"platform": "true", "service": self.name},
            endpoints=platform_endpoints(self.name),
            interval=self.interval,
        )

    def heartbeat(self) -> None:
        """One beat; registers again when the registry no longer holds the node."""
        try:
            services.node_heartbeat(node_id=self.node_id)
        except services.NodeNotRegistered:
            log.warning("discovery: %s was not registered any more; registering again", self.node_id)
            self.register()

    def start(self) -> SelfRegistration:
        self.register()
        self._thread = threading.Thread(target=self._run, name="discovery-self-registration", daemon=True)
        self._thread.start()
        localstate.register_thread("discovery-self-registration", alive=self._thread.is_alive)
        atexit.register(self.stop)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.heartbeat()
            except Exception:  # the cache or database is down: try again at the next beat
                log.exception("discovery: self-registration heartbeat failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            services.node_deregister(node_id=self.node_id, reason="shutdown")
        except Exception as exc:
            log.info("discovery: deregistering %s: %s", self.node_id, exc)
