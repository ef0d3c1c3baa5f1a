"""Service discovery for Python services: register with heartbeats, look up from a local cache.

```python
from platform_client import PlatformSession
from platform_client.discovery import Discovery

session = PlatformSession()
discovery = Discovery(session)
with discovery.register("orders", "1.2.0", "10.0.0.7", 8080, metadata={"zone": "eu"}) as node:
    ...                                   # heartbeats in a background thread; deregisters on exit
orders = discovery.get_service("orders")  # a dict lookup once cached; kept current by the watch
discovery.watch(lambda result: print(result["action"], result["node"]["id"]), services=["orders"])
```

Looked-up services are kept in process memory and kept current by one background watcher:
the ``/ws/discovery/`` websocket (each change carries the service's whole document), or, when
the websocket is unavailable, blocking queries (``?index=N&wait=``).  When the platform cannot
be reached the cache keeps answering with what it last saw (stale but usable), and the watcher
retries.  A registration whose heartbeat is answered ``404 node_not_registered`` (the node
expired, say after a long pause) registers again by itself.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from platform_client._backoff import Backoff
from platform_client.session import WEBSOCKET_LOG, PlatformError, PlatformSession, token_refused

log = logging.getLogger(__name__)

API = "/api/v1/discovery"
Result = dict[str, Any]


class Registration:
    """One registered node, heartbeating every ``interval`` seconds until :meth:`deregister`."""

    def __init__(
        self,
        session: PlatformSession,
        service: str,
        version: str,
        address: str,
        port: int,
        metadata: dict[str, str] | None = None,
        endpoints: list[dict[str, Any]] | None = None,
        *,
        interval: int = 10,
        ttl: int | None = None,
        node_id: str | None = None,
        service_metadata: dict[str, str] | None = None,
        deregister_after: int | None = None,
    ) -> None:
        self.session = session
        self.node_id = node_id or f"{service}-{uuid.uuid4().hex[:12]}"
        self.interval = interval
        self.body: dict[str, Any] = {
            "service": service,
            "version": version,
            "address": address,
            "port": port,
            "metadata": metadata or {},
            "endpoints": endpoints or [],
            "interval": interval,
        }
        for name, value in (
            ("ttl", ttl),
            ("service_metadata", service_metadata),
            ("deregister_after", deregister_after),
        ):
            if value is not None:
                self.body[name] = value
        self.node: dict[str, Any] | None = None
        self.registrations = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return f"{API}/nodes/{self.node_id}/"

    def start(self) -> Registration:
        """Register now (errors raise) and start heartbeating; once (a second call does nothing)."""
        if self._thread is not None:
            return self
        self.register()
        self._thread = threading.Thread(
            target=self._run, name=f"discovery-heartbeat-{self.node_id}", daemon=True
        )
        self._thread.start()
        atexit.register(self.deregister)
        return self

    def register(self) -> dict[str, Any]:
        self.node = self.session.call("PUT", self.path, json=self.body)
        self.registrations += 1
        return self.node

    def heartbeat(self) -> None:
        """Renew the node once; registers again if the platform forgot it."""
        try:
            self.session.call("POST", f"{self.path}heartbeat/")
        except PlatformError as exc:
            if exc.status == 404 and exc.code == "node_not_registered":
                log.warning("discovery: node %s was not registered any more; registering again", self.node_id)
                self.register()
            else:
                raise

    def _run(self) -> None:
        # A failed heartbeat is tried again before the next beat, so that an outage shorter than
        # the node's TTL does not expire it (see platform_client._backoff).
        backoff = Backoff(0.5, self.interval)
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                self.heartbeat()
            except Exception as exc:  # whatever failed, the thread keeps the node alive
                wait = backoff.next(getattr(exc, "retry_after", None))
                expected = isinstance(exc, (PlatformError, httpx.HTTPError))
                log.warning(
                    "discovery: heartbeat of %s failed (next try in %.1f s): %s",
                    self.node_id,
                    wait,
                    exc,
                    exc_info=not expected,  # an unexpected error (a non-JSON answer ...) in full
                )
            else:
                wait = self.interval
                backoff.reset()

    def deregister(self, timeout: float | None = None) -> None:
        """Stop heartbeating and remove the node (quietly, if the platform cannot be reached); with
        ``timeout``, in that many seconds at most."""
        if self._stop.is_set():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        self._stop.set()
        atexit.unregister(self.deregister)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5 if timeout is None else timeout)
        left = {} if deadline is None else {"timeout": max(deadline - time.monotonic(), 0.01)}
        try:
            self.session.call("DELETE", self.path, **left)
        except (PlatformError, httpx.HTTPError, RuntimeError) as exc:
            log.info("discovery: deregistering %s: %s", self.node_id, exc)

    def __enter__(self) -> Registration:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deregister()


class Discovery:
    """Lookups served from a local cache kept current by a background watch."""

    def __init__(
        self,
        session: PlatformSession,
        *,
        use_websocket: bool = True,
        wait_seconds: float = 30.0,
        retry_seconds: float = 5.0,
    ) -> None:
        self.session = session
        self.use_websocket = use_websocket
        self.wait_seconds = wait_seconds
        self.retry_seconds = retry_seconds
        self._services: dict[str, dict[str, Any]] = {}
        self._indexes: dict[str, int] = {}
        #: Services this cache held whose record has since gone with their last node: no nodes.
        self._gone: set[str] = set()
        #: The newest change told to the callbacks, per service (each change is told once).
        self._told: dict[str, int] = {}
        self._watched: set[str] = set()
        self._watch_all = False
        self._callbacks: list[Callable[[Result], None]] = []
        self._lock = threading.Lock()
        self._changed = threading.Event()  # new names to subscribe to
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: "websocket", "blocking" or None: how the watcher currently follows changes.
        self.mode: str | None = None

    # --- registration -------------------------------------------------------------------------

    def register(
        self,
        service: str,
        version: str,
        address: str,
        port: int,
        metadata: dict[str, str] | None = None,
        endpoints: list[dict[str, Any]] | None = None,
        **options: Any,
    ) -> Registration:
        """Register a node of ``service`` and heartbeat it until exit (or ``.deregister()``)."""
        return Registration(
            self.session, service, version, address, port, metadata, endpoints, **options
        ).start()

    # --- lookups --------------------------------------------------------------------------------

    def get_service(self, name: str) -> dict[str, Any]:
        """The service's document ``{name, index, versions: [{version, endpoints, nodes}]}``.

        A cached service costs one dictionary lookup.  The first lookup of a name asks the
        platform (a 404 raises PlatformError) and starts watching it.
        """
        document = self._services.get(name)
        if document is not None:
            return document
        return self._first_lookup(name)

    def nodes(self, name: str, *, version: str | None = None, passing: bool = True) -> list[dict[str, Any]]:
        """The service's nodes (passing ones by default), of one version or all.

        A service looked up before (and so watched) that has lost its last node has none: ``[]``,
        from memory, until a node registers again.  A name this cache never held asks the
        platform as :meth:`get_service` does (a 404 raises PlatformError).
        """
        document = self._services.get(name)
        if document is None:
            if name in self._gone:
                return []
            document = self.get_service(name)
        return [
            node
            for entry in document["versions"]
            if version is None or entry["version"] == version
            for node in entry["nodes"]
            if not passing or node["status"] == "passing"
        ]

    def _first_lookup(self, name: str) -> dict[str, Any]:
        document = self._fetch(name)
        if document is None:
            raise PlatformError(404, "not_found", f"No service named {name!r} is registered.")
        self._store(name, document)
        self._watch_names([name])
        return document

    def _fetch(
        self, name: str, *, index: int | None = None, wait: float | None = None
    ) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        timeout: float | None = None
        if index is not None:
            params = {"index": index, "wait": f"{wait or self.wait_seconds}s"}
            timeout = (wait or self.wait_seconds) + 10
        response = self.session.request(
            "GET", f"{API}/services/{name}/", params=params, timeout=timeout or self.session.timeout
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise PlatformError.from_response(response)
        return response.json()

    def _store(self, name: str, document: dict[str, Any] | None) -> None:
        with self._lock:
            if document is None:
                if self._services.pop(name, None) is not None:
                    self._gone.add(name)
                return
            if document["index"] >= self._indexes.get(name, -1):
                self._services[name] = document
                self._indexes[name] = document["index"]
                self._gone.discard(name)

    # --- watching -------------------------------------------------------------------------------

    def watch(self, callback: Callable[[Result], None], services: list[str] | None = None) -> None:
        """Call ``callback(result)`` for every change ({action, service, version, node, index, ...}).

        ``services`` names the services to follow; without it, every service is followed
        (websocket only; with blocking queries only the services looked up are).
        """
        self._callbacks.append(callback)
        if services is None:
            self._watch_all = True
            self._watch_names([])
        else:
            self._watch_names(services)

    def _watch_names(self, names: list[str]) -> None:
        with self._lock:
            self._watched.update(names)
            start = self._thread is None  # one watcher, however many threads look up at once
            if start:
                self._thread = threading.Thread(target=self._run, name="discovery-watch", daemon=True)
        self._changed.set()
        if start:
            self._thread.start()

    def close(self, timeout: float = 1.0) -> None:
        """Stop watching: the watch thread ends before this returns (within 0.2 s on a websocket;
        a blocking query ends when the session closes, so it is waited for ``timeout`` at most)."""
        self._stop.set()
        self._changed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout)

    def _notify(self, results: list[Result]) -> None:
        for result in results:
            name, index = result.get("service"), result.get("index")
            if isinstance(index, int):  # each change once, whichever way it came (live, replay, history)
                with self._lock:
                    if index <= self._told.get(name, 0):
                        continue
                    self._told[name] = index
            for callback in list(self._callbacks):
                try:
                    callback(result)
                except Exception:
                    log.exception("discovery: a watch callback failed")

    def _apply_change(self, message: dict[str, Any]) -> None:
        name = message["service"]
        if name in self._watched or name in self._services:
            self._store(name, message.get("document"))
            with self._lock:
                self._indexes[name] = max(self._indexes.get(name, 0), message["index"])
        self._notify(message.get("results", []))

    def _stopped(self) -> bool:
        return self._stop.is_set() or self.session.is_closed

    def _run(self) -> None:
        while not self._stopped():
            if self.use_websocket:
                try:
                    self._follow_websocket()
                    continue
                except Exception as exc:  # unavailable: fall back to blocking queries for a while
                    token_refused(self.session.credentials, exc)
                    log.info("discovery: websocket watch unavailable (%s); using blocking queries", exc)
            self.mode = "blocking"
            deadline = time.monotonic() + (self.retry_seconds if self.use_websocket else float("inf"))
            while not self._stopped() and time.monotonic() < deadline:
                try:
                    self._blocking_round()
                except Exception:  # never let the watcher die: keep serving the cache, retry
                    log.exception("discovery: watch round failed")
                    self._stop.wait(1.0)

    def _ws_url(self) -> str:
        return self.session.websocket_url("/ws/discovery/")

    def _follow_websocket(self) -> None:
        from websockets.sync.client import connect

        token = self.session.credentials.token()
        with connect(
            self._ws_url(),
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=5,
            close_timeout=1,  # a hung platform does not hold close() for the library's 10 s
            logger=WEBSOCKET_LOG,
        ) as ws:
            json.loads(ws.recv(timeout=5))  # hello
            self.mode = "websocket"
            self._changed.set()  # (re)subscribe everything on this connection
            subscribed: set[str] = set()
            all_sent = False
            while not self._stopped():
                if self._changed.is_set():
                    self._changed.clear()
                    with self._lock:
                        pending = sorted(self._watched - subscribed)
                    if self._watch_all and not all_sent:
                        pending.append("*")
                        all_sent = True
                    if pending:
                        with self._lock:  # changes made while we were not listening are replayed
                            since = {name: self._indexes[name] for name in pending if name in self._indexes}
                        ws.send(json.dumps({"type": "subscribe", "services": pending, "since": since}))
                        subscribed.update(name for name in pending if name != "*")
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "change":
                    self._apply_change(message)
                elif kind == "subscribed":
                    self._catch_up(message.get("indexes", {}))
                elif kind == "replay":
                    self._notify([message["result"]])
                elif kind == "error":
                    log.warning(
                        "discovery: watch refused: %s: %s", message.get("code"), message.get("message")
                    )

    def _catch_up(self, indexes: dict[str, int]) -> None:
        """After (re)subscribing: refetch services that changed while we were not listening."""
        for name, index in indexes.items():
            if index > self._indexes.get(name, -1) and (name in self._services or name in self._gone):
                try:
                    self._store(name, self._fetch(name))
                except (PlatformError, httpx.HTTPError) as exc:
                    log.info("discovery: catching up %s failed: %s", name, exc)

    def _blocking_round(self) -> None:
        with self._lock:
            names = sorted(self._watched)
        if not names:
            self._changed.wait(1.0)
            self._changed.clear()
            return
        wait = max(1.0, self.wait_seconds / len(names))
        for name in names:
            if self._stopped():
                return
            known = self._indexes.get(name, 0)
            try:
                document = self._fetch(name, index=known, wait=wait)
            except Exception as exc:  # PlatformError, httpx errors, a closed session
                log.info("discovery: blocking query for %s failed: %s", name, exc)
                self._stop.wait(min(self.retry_seconds, 5.0))  # platform down: keep the stale cache
                return
            if document is None or document["index"] > known:
                # A service first seen now starts from its current index (as a websocket
                # subscription without ``since`` does), not from an hour of history.
                results = self._history(name, known) if known else []
                self._store(name, document)
                # A service without nodes answers 404 at once and without its index: take the
                # index from its history, so each change is told once, and wait before asking again.
                newest = max([document["index"] if document else known, *(r["index"] for r in results)])
                with self._lock:
                    self._indexes[name] = newest
                self._notify(results)
                if document is None and newest == known:
                    self._stop.wait(wait)

    def _history(self, name: str, since: int, max_pages: int = 100) -> list[Result]:
        """The service's results after ``since``, every page of them (oldest first)."""
        if not self._callbacks:
            return []
        results: list[Result] = []
        url: str | None = f"{API}/results/"
        params: dict[str, Any] | None = {"service": name, "since": since}
        for _ in range(max_pages):
            try:
                page = self.session.call("GET", url, params=params)
            except Exception:  # PlatformError, httpx errors, a closed session: what we have
                break
            results += page["results"]
            url, params = page.get("next"), None  # the next link carries the query
            if not url:
                break
        return results


_default: Discovery | None = None
_default_lock = threading.Lock()


def default_discovery() -> Discovery:
    """A Discovery on a PlatformSession configured from the environment (PLATFORM_URL, ...)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Discovery(PlatformSession())
        return _default


def register(
    service: str,
    version: str,
    address: str,
    port: int,
    metadata: dict[str, str] | None = None,
    endpoints: list[dict[str, Any]] | None = None,
    **options: Any,
) -> Registration:
    return default_discovery().register(service, version, address, port, metadata, endpoints, **options)


def get_service(name: str) -> dict[str, Any]:
    return default_discovery().get_service(name)


def watch(callback: Callable[[Result], None], services: list[str] | None = None) -> None:
    default_discovery().watch(callback, services)
