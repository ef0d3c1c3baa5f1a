"""``Platform``: the SDK's one entry point, every module on one session and one scheduler.

(This module is ``entry``, not ``platform``: that name is the standard library's.)

```python
from platform_client import Platform

with Platform.from_env() as p:  # PLATFORM_URL, PLATFORM_CLIENT_ID/_SECRET, PLATFORM_SERVICE_NAME
    p.kv.put("greeting", "hello", ttl=60)
    with p.sync.lock("nightly-report", ttl=30) as held:
        print("fence", held.fence)
    p.events.publish("orders.created", {"id": 7})
```

Each attribute is made the first time it is read (nothing starts that a service does not use):
``.auth .config .discovery .events .monitor .router .trace .db .kv .sync .log .metrics``.  They share one
authenticated HTTP session (``.session``) and one background scheduler (``.scheduler``, used by
the SDK's own periodic work: lock renewal, leadership, pushes); :meth:`close` (or leaving the
``with`` block) stops everything that was started, in the reverse order.  Each module is also
usable alone (``platform_client.kv``, ``platform_client.discovery`` ...).
"""

from __future__ import annotations

import inspect
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from platform_client._checks import seconds
from platform_client.scheduler import Scheduler
from platform_client.session import PlatformSession

if TYPE_CHECKING:
    from platform_client.config import Config
    from platform_client.discovery import Discovery
    from platform_client.event import EventPublisher
    from platform_client.kv import KV
    from platform_client.router import Router
    from platform_client.sync import Sync

__all__ = ["CLOSE_GRACE", "Platform"]

#: Seconds :meth:`Platform.close` gives each part at least, even once its timeout is spent.
CLOSE_GRACE = 0.1


class _Bound:
    """A module's functions with the platform's session as their first argument."""

    def __init__(self, module: Any, session: PlatformSession, names: tuple[str, ...], **extra: Any) -> None:
        self._module = module
        self._session = session
        self._names = names
        for key, value in extra.items():
            setattr(self, key, value)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in self._names:
            raise AttributeError(f"{self._module.__name__} has no session function {name!r}")
        function = getattr(self._module, name)
        return lambda *args, **kwargs: function(self._session, *args, **kwargs)

    def __dir__(self) -> list[str]:
        return sorted({*self._names, *self.__dict__})


class Platform:
    """The platform as one service sees it; see the module documentation."""

    def __init__(
        self,
        session: PlatformSession,
        service: str,
        version: str = "0.0.0",
        *,
        node: str | None = None,
        kv_url: str = "memory://",
        sync_url: str = "memory://",
        config_env: str = "default",
        log_file: str | None = None,
        log_events: bool = False,
        statsd: str | None = None,
    ) -> None:
        if not service:
            raise ValueError("a service name is required (PLATFORM_SERVICE_NAME)")
        self.session = session
        self.service = service
        self.version = version
        self.node = node or f"{service}-{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
        self.kv_url = kv_url
        self.sync_url = sync_url
        self.config_env = config_env
        self.log_file, self.log_events, self.statsd = log_file, log_events, statsd
        self.scheduler = Scheduler(name=f"platform-{service}")
        self._made: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def from_env(cls, **overrides: Any) -> Platform:
        """A platform from ``PLATFORM_URL``, ``PLATFORM_CLIENT_ID``, ``PLATFORM_CLIENT_SECRET``,
        ``PLATFORM_SCOPES``, ``PLATFORM_SERVICE_NAME``, ``PLATFORM_SERVICE_VERSION``,
        ``PLATFORM_NODE``, ``PLATFORM_KV_URL``, ``PLATFORM_SYNC_URL``, ``PLATFORM_LOG_FILE``,
        ``PLATFORM_LOG_EVENTS`` (1, true or yes: warnings shipped as events) and ``PLATFORM_STATSD``
        (host:port); keyword arguments win."""
        env = os.environ
        log_events = _flag(overrides.pop("log_events", None), "PLATFORM_LOG_EVENTS")  # before a session
        given = overrides.pop("session", None)
        session = given or PlatformSession(
            overrides.pop("url", None),
            overrides.pop("client_id", None),
            overrides.pop("client_secret", None),
            overrides.pop("scopes", None),
        )
        try:
            return cls(
                session,
                overrides.pop("service", None)
                or env.get("PLATFORM_SERVICE_NAME")
                or env.get("OTEL_SERVICE_NAME", ""),
                overrides.pop("version", None) or env.get("PLATFORM_SERVICE_VERSION", "0.0.0"),
                node=overrides.pop("node", None) or env.get("PLATFORM_NODE"),
                kv_url=overrides.pop("kv_url", None) or env.get("PLATFORM_KV_URL", "memory://"),
                sync_url=overrides.pop("sync_url", None) or env.get("PLATFORM_SYNC_URL", "memory://"),
                log_file=overrides.pop("log_file", None) or env.get("PLATFORM_LOG_FILE"),
                log_events=log_events,
                statsd=overrides.pop("statsd", None) or env.get("PLATFORM_STATSD"),
                **overrides,
            )
        except BaseException:  # a setting refused: the session made for it is not left open
            if given is None:
                session.close()
            raise

    # --- made on first use ----------------------------------------------------------------------

    def _get(self, name: str, make: Callable[[], Any], close: str | None = None) -> Any:
        with self._lock:
            if name not in self._made:
                if self._closed:
                    raise RuntimeError("this Platform is closed")
                made = make()
                self._made[name] = made
                if close:
                    self._closers.append(getattr(made, close))
            return self._made[name]

    @property
    def auth(self) -> _Bound:
        """``check(resource, action)``, ``introspect(token)``, ``.verifier`` (JWTs offline)."""

        def make() -> _Bound:
            from platform_client import auth

            bound = _Bound(auth, self.session, ("check", "introspect"))
            bound.verifier = auth.JWKSVerifier(base_url=str(self.session.base_url))
            return bound

        return self._get("auth", make)

    @property
    def config(self) -> Config:
        """The service's configuration: namespace = service name, watched for changes."""

        def make() -> Config:
            from platform_client.config import Config, PlatformSource

            return Config([PlatformSource(self.service, self.config_env, session=self.session)], watch=True)

        return self._get("config", make, "close")

    @property
    def discovery(self) -> Discovery:
        def make() -> Discovery:
            from platform_client.discovery import Discovery

            return Discovery(self.session)

        return self._get("discovery", make, "close")

    def register(self, address: str, port: int, **options: Any) -> Any:
        """Register this node with discovery (heartbeats until :meth:`close`)."""
        registration = self.discovery.register(
            self.service, self.version, address, port, node_id=self.node, **options
        )
        with self._lock:
            self._closers.append(registration.deregister)
        return registration

    @property
    def events(self) -> EventPublisher:
        def make() -> EventPublisher:
            from platform_client.event import EventPublisher

            return EventPublisher(self.session, source=self.service)

        return self._get("events", make, "close")

    @property
    def monitor(self) -> Any:
        """``platform_client.monitor.Monitor`` for this node, reporting once started."""

        def make() -> Any:
            from platform_client.monitor import Monitor

            return Monitor(self.session, self.service, self.node)

        return self._get("monitor", make, "stop")

    @property
    def router(self) -> Router:
        def make() -> Router:
            from platform_client.router import Router

            return Router(self.session, caller=self.service, discovery=self.discovery)

        return self._get("router", make, "close")

    @property
    def trace(self) -> _Bound:
        """``setup()`` (OpenTelemetry exporting as this service), ``search``, ``get`` ..."""

        def make() -> _Bound:
            from platform_client import trace

            bound = _Bound(trace, self.session, ("search", "get", "services", "dependencies", "compare"))

            def setup(**options: Any) -> Any:
                provider = trace.setup(self.service, session=self.session, version=self.version, **options)

                def shut_down(timeout: float) -> None:
                    # before the session: the spans still queued are sent, and the thread ends
                    provider.force_flush(int(timeout * 1000))
                    provider.shutdown()

                self._closers.append(shut_down)
                return provider

            bound.setup = setup
            bound.wsgi, bound.asgi = trace.wsgi, trace.asgi
            return bound

        return self._get("trace", make)

    @property
    def db(self) -> Any:
        """``platform_client.db.Databases`` (the catalog); tables with :meth:`table`."""

        def make() -> Any:
            from platform_client.db import Databases

            return Databases(self.session)

        return self._get("db", make)

    def table(self, name: str, *, database: str) -> Any:
        from platform_client.db import Table

        return Table(name, database=database, session=self.session)

    @property
    def kv(self) -> KV:
        """Key-value store from ``kv_url`` (``memory://``, ``redis://``, ``memcached://``, ``ring+...``)."""

        def make() -> KV:
            from platform_client.kv import from_url

            with _setting("kv_url", "PLATFORM_KV_URL"):
                return from_url(self.kv_url, namespace=self.service)

        return self._get("kv", make, "close")

    @property
    def sync(self) -> Sync:
        """Locks with fencing tokens and leader election on ``sync_url`` (Redis, PostgreSQL)."""

        def make() -> Sync:
            from platform_client.sync import from_url

            with _setting("sync_url", "PLATFORM_SYNC_URL"):
                return from_url(
                    self.sync_url, namespace=self.service, node=self.node, scheduler=self.scheduler
                )

        return self._get("sync", make, "close")

    @property
    def log(self) -> Any:
        """A structlog logger: JSON lines with service, version, node, trace ids (``[log]`` extra)."""

        def make() -> Any:
            from platform_client import log

            events = self.events if self.log_events else None
            return log.setup(self.service, self.version, node=self.node, file=self.log_file, events=events)

        return self._get("log", make)

    @property
    def metrics(self) -> Any:
        """``platform_client.metrics.Metrics`` for this service (Prometheus, and statsd if set)."""

        def make() -> Any:
            from platform_client.metrics import Metrics

            return Metrics(self.service, statsd=self.statsd)

        return self._get("metrics", make, "close")

    def client(self, service: str, http: Any = None, **options: Any) -> Any:
        """An HTTP client for ``service`` through the router: a node picked per call, labels and
        trace context propagated, this service's token attached, each call's stats recorded.
        ``http``: ``"requests"`` for a ``requests.Session``, else httpx (see ``outgoing``)."""
        from platform_client import outgoing

        if http is None or http == "httpx":
            http = outgoing.httpx_client(self.session.credentials)
        elif http == "requests":
            http = outgoing.requests_session(self.session.credentials)
        routed = self.router.client(service, http, **options)
        with self._lock:
            self._closers.append(http.close)
        return routed

    def wsgi(self, app: Any, *, scopes: tuple[str, ...] = (), trace: bool = False, **options: Any) -> Any:
        """``app`` behind the SDK's middleware: this platform's tokens, monitor and metrics."""
        from platform_client.middleware import wsgi

        return wsgi(
            app,
            verifier=self.auth.verifier,
            scopes=scopes,
            monitor=self.monitor,
            metrics=self._made.get("metrics"),  # when the service uses metrics
            trace=trace,
            **options,
        )

    def asgi(self, app: Any, *, scopes: tuple[str, ...] = (), trace: bool = False, **options: Any) -> Any:
        from platform_client.middleware import asgi

        return asgi(
            app,
            verifier=self.auth.verifier,
            scopes=scopes,
            monitor=self.monitor,
            metrics=self._made.get("metrics"),  # when the service uses metrics
            trace=trace,
            **options,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def started(self) -> list[str]:
        """The modules made so far."""
        return list(self._made)

    def close(self, timeout: float = 10.0) -> None:
        """Stop what was started (newest first), the scheduler, then the session, in about
        ``timeout`` seconds in all: each part gets what the ones before it left, and at least
        :data:`CLOSE_GRACE` to stop threads that only need to notice (a part that takes a timeout
        waits for the platform and joins its threads that long at most)."""
        timeout = seconds(timeout, "timeout", zero=True)
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
            closers, self._closers = self._closers[::-1], []
        errors: list[BaseException] = []
        for closer in closers:
            try:
                if _takes_timeout(closer):
                    closer(timeout=max(deadline - time.monotonic(), CLOSE_GRACE))
                else:
                    closer()
            except Exception as exc:  # every module gets its chance to stop
                errors.append(exc)
        self.scheduler.close(max(deadline - time.monotonic(), CLOSE_GRACE))
        self.session.close()
        if errors:
            raise errors[0]

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _takes_timeout(closer: Callable[..., Any]) -> bool:
    try:
        return "timeout" in inspect.signature(closer).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


@contextmanager
def _setting(argument: str, variable: str) -> Iterator[None]:
    """A ValueError raised by a setting's value names where the value came from."""
    try:
        yield
    except ValueError as exc:
        raise ValueError(f"{argument} (or {variable}): {exc}") from None


def _flag(given: bool | None, variable: str) -> bool:
    """A keyword argument if given, else an environment flag as ``Config.get_bool`` reads one
    (unset or empty is false); anything else is a ValueError naming the variable."""
    if given is not None:
        return bool(given)
    from platform_client.config import boolean

    value = os.environ.get(variable, "")
    try:
        return boolean(value)
    except ValueError:
        raise ValueError(f"{variable} must be 1 or 0 (true/false, yes/no), not {value!r}") from None
