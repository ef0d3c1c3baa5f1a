"""``Router(..., watch=True)``: follow ``/ws/router/`` and refresh a service's routes as they change.

One background thread per router holds the websocket, subscribes to every service the router
has called, and refreshes a service's routes when the router announces a change (a weight or an
ejection moved, a label, rule, rate limit or policy was written), so a decision reaches callers in
a round trip instead of up to half a routes' ``ttl``.  While the websocket cannot be held, the
router polls as it does without a watch; the thread retries every ``retry_seconds``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING

from platform_client.session import WEBSOCKET_LOG, token_refused

if TYPE_CHECKING:
    from platform_client.router import Router

log = logging.getLogger(__name__)


class RouteWatcher:
    def __init__(self, router: Router, *, retry_seconds: float = 5.0) -> None:
        self.router = router
        self.retry_seconds = retry_seconds
        self.services: set[str] = set()
        #: "websocket" while subscribed, else None (the router polls).
        self.mode: str | None = None
        #: Changes seen, per service (a count, for tests and metrics).
        self.changes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, service: str) -> None:
        with self._lock:
            self.services.add(service)
            start = self._thread is None
            if start:
                self._thread = threading.Thread(target=self._run, name="router-watch", daemon=True)
        self._changed.set()
        if start:
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # unavailable: the router polls meanwhile
                token_refused(self.router.session.credentials, exc)
                log.info("router: websocket watch unavailable (%s); polling", exc)
            self.mode = None
            self._stop.wait(self.retry_seconds)

    def _follow(self) -> None:
        from websockets.sync.client import connect

        session = self.router.session
        token = session.credentials.token()
        with connect(
            session.websocket_url("/ws/router/"),
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=5,
            close_timeout=1,  # a hung platform does not hold the watch's end for 10 s
            logger=WEBSOCKET_LOG,
        ) as ws:
            json.loads(ws.recv(timeout=5))  # hello
            subscribed: set[str] = set()
            self._changed.set()
            while not self._stop.is_set():
                if self._changed.is_set():
                    self._changed.clear()
                    with self._lock:
                        pending = sorted(self.services - subscribed)
                    if pending:
                        ws.send(json.dumps({"type": "subscribe", "services": pending}))
                        subscribed.update(pending)
                try:
                    message = json.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue
                kind = message.get("type")
                if kind == "subscribed":
                    self.mode = "websocket"
                elif kind == "change":
                    name = message.get("service")
                    self.changes[name] = self.changes.get(name, 0) + 1
                    self.router.refresh_service(name)
                elif kind == "error":
                    log.warning("router: watch refused: %s: %s", message.get("code"), message.get("message"))
