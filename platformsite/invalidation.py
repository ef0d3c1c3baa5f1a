"""Invalidation messages for process-local read caches.

The read paths of config and discovery keep a copy of each document in the process that served
it.  Without this module every read has to ask the shared cache whether its copy is still
current (a Redis round trip per request); with it, each write announces what it changed on one
Redis pub/sub channel after commit, every process drops the copies named, and a read answers
from its copy with no round trip at all.

A copy may only be trusted while this process is certain to hear every announcement:

- With Redis, a listener thread per process holds a subscription.  :func:`listening` is true
  only while it is subscribed and its connection answers (redis-py pings an idle subscription
  every second); when the connection drops, every copy is dropped, and again when the
  subscription is back, because announcements made in between were lost.  Readers that find
  :func:`listening` false fall back to asking the shared cache.
- Without Redis (the embedded mode: one process, an in-memory shared cache) announcements are
  delivered in-process and :func:`listening` is always true.

A reader that builds a copy takes :func:`epoch` first and keeps the copy only if the epoch has
not moved since (:func:`still`), checked again once the copy is stored: an announcement that
arrives while it reads the shared cache, or just before its copy lands, makes it throw the copy
away instead of keeping a document that may predate the write.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from django.conf import settings

from platformsite import localstate
from platformsite.cache import CACHE_DOWN

log = logging.getLogger(__name__)

CHANNEL = "platform:invalidate"
_SEPARATOR = "\x1f"
_HOST = socket.gethostname()
#: Seconds between health pings on an idle subscription, and between reconnection attempts.
HEALTH_SECONDS = 1.0
#: Even while listening, a copy is checked against the shared cache again after this long: a
#: bound on staleness should an announcement ever be lost with the connection still up.
TRUST_SECONDS = 10.0

Handler = Callable[[str], None]
Reset = Callable[[], None]


class _Bus:
    def __init__(self) -> None:
        self.handlers: dict[str, tuple[Handler, Reset]] = {}
        self.epoch = 0
        self.listening = False
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._publisher = None
        self._thread: threading.Thread | None = None

    # --- delivery -------------------------------------------------------------------------------

    def deliver(self, topic: str, key: str) -> None:
        self.epoch += 1
        handler = self.handlers.get(topic)
        if handler is not None:
            handler[0](key)

    def reset(self) -> None:
        self.epoch += 1
        for _, reset in self.handlers.values():
            reset()

    # --- Redis ----------------------------------------------------------------------------------

    def ensure_listener(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a fork inherits no thread: start this process's own
            self.listening = False
            self._publisher = None
            self._thread = threading.Thread(target=self._listen, name="platform-invalidation", daemon=True)
            self._thread.start()

    def listener_alive(self) -> bool:
        return self._pid == os.getpid() and self._thread is not None and self._thread.is_alive()

    def _listen(self) -> None:
        import redis

        while True:
            client = None
            try:
                client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    health_check_interval=HEALTH_SECONDS,
                    socket_connect_timeout=HEALTH_SECONDS * 2,
                    socket_timeout=HEALTH_SECONDS * 3,
                )
                pubsub = client.pubsub(ignore_subscribe_messages=False)
                pubsub.subscribe(CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=HEALTH_SECONDS)
                    if message is None:
                        pubsub.check_health()
                        continue
                    if message["type"] == "subscribe":
                        self.reset()  # whatever was announced before now is unknown
                        self.listening = True
                    elif message["type"] == "message":
                        origin, topic, key = message["data"].decode().split(_SEPARATOR, 2)
                        if origin != self.origin():  # this process was told when it announced
                            self.deliver(topic, key)
            except Exception as exc:  # any failure: stop trusting, then reconnect
                if self.listening:
                    log.warning("invalidation: subscription lost (%s); reads check the shared cache", exc)
                self.listening = False
                self.reset()
                if client is not None:
                    client.close()
                time.sleep(HEALTH_SECONDS)

    def publish(self, topic: str, key: str) -> None:
        if self._publisher is None:
            # The shared cache's client: its guarded connections give up on a Redis that stopped
            # answering after PLATFORM_REDIS_TIMEOUT, and at once while it is known down.
            from django.core.cache import cache

            self._publisher = cache._cache.get_client(write=True)
        self._publisher.publish(CHANNEL, _SEPARATOR.join((self.origin(), topic, key)))

    @staticmethod
    def origin() -> str:
        """Who announced: this process (its pid on this host)."""
        return f"{_HOST}:{os.getpid()}"


_bus = _Bus()


def register(topic: str, on_key: Handler, on_reset: Reset) -> None:
    """Call ``on_key(key)`` when ``key`` of ``topic`` changes anywhere, ``on_reset()`` when
    announcements may have been missed (both must just drop copies: they run on the listener
    thread)."""
    _bus.handlers[topic] = (on_key, on_reset)


def announce(topic: str, key: str) -> None:
    """Tell every process (this one at once) that ``key`` of ``topic`` changed; call after commit."""
    _bus.deliver(topic, key)
    if settings.REDIS_URL:
        try:
            _bus.publish(topic, key)
        except CACHE_DOWN as exc:  # readers re-check within TRUST_SECONDS
            log.warning("invalidation: could not announce %s %s: %s", topic, key, exc)
        except Exception:
            log.exception("invalidation: could not announce %s %s", topic, key)


def listening() -> bool:
    """Whether this process hears every announcement, so that its copies can be trusted."""
    if not settings.REDIS_URL:
        return True
    _bus.ensure_listener()
    return _bus.listening


def trust_seconds(otherwise: float) -> float:
    """How long a copy checked against the shared cache may be used without checking again:
    :data:`TRUST_SECONDS` while :func:`listening`, else ``otherwise`` (a setting, 0 by default)."""
    return TRUST_SECONDS if listening() else otherwise


def epoch() -> int:
    """A counter that moves on every announcement and reset (see :func:`still`)."""
    return _bus.epoch


def still(taken: int) -> bool:
    """True if nothing was announced since :func:`epoch` returned ``taken``."""
    return _bus.epoch == taken


# Tests drop every copy and move the epoch with ``localstate.reset_all()``.
localstate.register_state("platform.invalidation", reset=_bus.reset)
localstate.register_thread("platform-invalidation", alive=_bus.listener_alive)
