"""The base of every service's websocket consumer: scope checks at connect, JSON frames.

A connection is authenticated by the session (dashboards) or a bearer token (SDK: the
``Authorization`` header, or ``?access_token=`` where a client cannot set headers).  Without
credentials it is closed with code 4401, without the service's read scope with 4403.  A token
stays checked while the connection is open: before a frame goes out, at most once per
``PLATFORM_REVOCATION_POLL_SECONDS`` and whenever the token has expired, it is validated again,
and a token revoked, expired or whose account was disabled closes the connection with 4401
instead of the frame.  A frame
that is not JSON text is answered with a ``parse_error`` error frame
(``{"type": "error", "code", "message"}``) and the connection stays open.
When the database or Redis cannot be reached (a restart, a dropped connection), the connection
is closed with code 1013, "try again later", and one warning is logged: clients reconnect
(the SDK's and the dashboards' do) and are told the state anew.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from auth_app.access import TokenInfo, cached_checksum, is_allowed, validate_checksum
from auth_app.policy import every_resource, resource_for
from platformsite import live
from platformsite.api.errors import OUTAGES
from platformsite.api.validators import SERVICE

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455 registry: the service is overloaded or unavailable
CLOSE_INVALID = 4400  # a connection whose own parameters are refused (after an error frame)
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class ServiceConsumer(AsyncJsonWebsocketConsumer):
    service = ""
    #: When the connection's token is next validated again (set at the accept).
    _recheck_at = 0.0
    _credentials_gone = False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except OUTAGES as exc:  # from a handler, or the channel layer's own receive
            log.warning("websocket %s closed with 1013: %s: %s", scope.get("path"), type(exc).__name__, exc)
            try:
                await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})
            except Exception:  # the server already knows the connection is gone
                log.debug("websocket %s: the close was not sent", scope.get("path"), exc_info=True)

    @property
    def subject(self) -> str:
        token = self.scope.get("token")
        if isinstance(token, TokenInfo):
            return token.subject
        return f"user:{self.scope['user'].get_username()}"

    def granted(self, scope_name: str) -> bool:
        token = self.scope.get("token")
        if isinstance(token, TokenInfo):
            return token.has_scope(scope_name)
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (self.scope.get("token") or (user is not None and user.is_authenticated)):
            await refuse(self, CLOSE_UNAUTHENTICATED)
            return
        if not self.granted(f"{self.service}:read"):
            await refuse(self, CLOSE_FORBIDDEN)
            return
        await self.accept()
        self._recheck_at = time.time() + settings.PLATFORM_REVOCATION_POLL_SECONDS
        await self.on_connected()

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False):
        """A frame goes out once the connection's credentials still stand (as from send_json)."""
        if await self._credentials_stand():
            await super().send(text_data, bytes_data, close)

    async def send_json(self, content: Any, close: bool = False) -> None:
        if await self._credentials_stand():  # (channels' send_json skips an overridden send)
            await super().send_json(content, close)

    async def _credentials_stand(self) -> bool:
        token = self.scope.get("token")
        if not isinstance(token, TokenInfo):  # a dashboard session: Django's own expiry
            return True
        if self._credentials_gone:
            return False
        now = time.time()
        if now < self._recheck_at and now < token.expires:
            return True
        checksum = self.scope.get("token_checksum", "")
        # The token cache first, on the loop (a dictionary lookup, and a shared-cache read of the
        # revocation epoch at most once per poll interval in the process); the database in a thread.
        current = cached_checksum(checksum) or await database_sync_to_async(validate_checksum)(checksum)
        if current is None:  # revoked, expired, or its account disabled
            self._credentials_gone = True
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return False
        self.scope["token"] = current
        self._recheck_at = now + settings.PLATFORM_REVOCATION_POLL_SECONDS
        return True

    async def on_connected(self) -> None:
        """Called once the connection is accepted."""

    async def join(self, group: str) -> None:
        """Add this connection to the channel layer's ``group``, bounded as
        :func:`platformsite.live.bounded` says (a Redis that hangs: closed with 1013)."""
        await live.bounded(self.channel_layer, self.channel_layer.group_add, group, self.channel_name)

    async def leave(self, group: str) -> None:
        await live.bounded(self.channel_layer, self.channel_layer.group_discard, group, self.channel_name)

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch, without its ``close_old_connections`` before every message.

        Channels runs that in a worker thread before each handler: a thread hop per message and
        connection, which made a change pushed to 200 watchers of one process queue 200 hops on
        the event loop (a third of its time in the propagation benchmark).  These consumers reach
        the database only through ``database_sync_to_async``, which closes stale connections
        itself, in the thread that uses them, before and after each call.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            if text_data is None:
                raise ValueError("a binary frame")
            content = await self.decode_json(text_data)
        except (ValueError, RecursionError):  # not JSON text, or nested too deeply to parse
            await self.error("parse_error", "Send JSON text messages.")
            return
        await self.receive_json(content, **kwargs)

    @database_sync_to_async
    def may_read(self, name: str) -> bool:
        """The caller's policy allows reading ``<service>:<name>`` (``"*"``: every name, which only
        a rule allowing any name does), as the service's REST reads decide it."""
        token = self.scope.get("token")
        if not isinstance(token, TokenInfo):  # a staff session: admin
            return True
        resource = every_resource(self.service) if name == "*" else resource_for(self.service, name)
        return is_allowed(
            account_id=token.account_id, scopes=token.scopes, resource=resource, action="read"
        ).allowed

    async def error(self, code: str, message: str, **details: Any) -> None:
        """Tell the client its message was refused: ``{"type": "error", "code", "message"}`` (and
        any ``details`` as more fields), the one error frame of every service's websocket."""
        await self.send_json({"type": "error", "code": code, "message": message, **details})


class ServiceWatchConsumer(ServiceConsumer):
    """A websocket watching chosen services: the one protocol of the discovery, router and monitor
    sockets (and of any service whose changes are per watched service).

    The client sends ``{"type": "subscribe", "services": [name, ...]}`` (``"*"`` for every
    service, allowed only where a policy rule would allow any name: ``<service>:*``) and
    ``{"type": "unsubscribe", "services": [...]}``; ``{"type": "ping"}`` is answered ``pong``.
    Each name is checked against the caller's policy for ``<service>:<name>`` read.  A subclass
    says which channel groups a name joins (:meth:`groups_of`), may add fields to the
    ``subscribed`` answer (:meth:`subscribed`), and its group handlers pick the messages meant
    for this connection with :meth:`takes` (per-service and all-services copies of a change) or
    :meth:`watches` (one group for everything, filtered by service).
    """

    max_subscriptions = 1000

    def groups_of(self, name: str) -> list[str]:
        """The channel groups a subscription to ``name`` (or ``"*"``) joins: by default the
        service's every-service group for ``"*"`` and ``<service>.service.<name>`` for a name;
        a service that sends its changes elsewhere says so here."""
        if name == "*":
            return [f"{self.service}.all"]
        # Channel-layer group names are limited to 100 characters: a long name by its digest.
        key = name if len(name) <= 80 else hashlib.sha256(name.encode()).hexdigest()[:40]
        return [f"{self.service}.service.{key}"]

    def invalid(self, content: dict) -> str | None:
        """What is wrong with a ``subscribe`` message's own fields (beyond ``services``), if
        anything: it is refused as ``invalid`` with this message and subscribes nothing."""
        return None

    async def subscribed(self, names: list[str], content: dict) -> dict[str, Any]:
        """Extra fields of the ``subscribed`` answer for the services just subscribed."""
        return {}

    async def after_subscribed(self, content: dict) -> None:
        """Called once the ``subscribed`` answer is sent (a replay may follow it)."""

    def takes(self, event: dict) -> bool:
        """A change sent in two copies, to its service's group and (``"copy": "all"``) to the
        every-service group: a ``"*"`` subscriber takes the second, others the first."""
        return (event.get("copy") == "all") == self.all_services

    def watches(self, service: str | None) -> bool:
        return self.all_services or service in self.watched

    async def on_connected(self) -> None:
        self.watched: set[str] = set()
        self.all_services = False
        self.joined: set[str] = set()
        await self.send_json({"type": "hello", "service": self.service, "subject": self.subject})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "subscribe":
            await self.subscribe(content)
        elif kind == "unsubscribe":
            await self.unsubscribe(content)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("unknown_message", 'Send {"type": "subscribe", "services": [...]}.')

    def _names(self, content: dict) -> list[str] | None:
        names = content.get("services")
        if not isinstance(names, list) or not all(name == "*" or SERVICE.matches(name) for name in names):
            return None
        return list(dict.fromkeys(names))

    async def subscribe(self, content: dict) -> None:
        names = self._names(content)
        if names is None or len(self.watched) + len(names) > self.max_subscriptions:
            await self.error(
                "invalid", f"'services' must be a list of up to {self.max_subscriptions} names or '*'."
            )
            return
        problem = self.invalid(content)
        if problem:
            await self.error("invalid", problem)
            return
        denied = [name for name in names if not await self.may_read(name)]
        if denied:
            await self.error("policy_denied", f"Not allowed to read: {', '.join(denied)[:500]}")
            return
        for name in names:
            if name == "*":
                self.all_services = True
            else:
                self.watched.add(name)
            await self._join(self.groups_of(name))
        extra = await self.subscribed([name for name in names if name != "*"], content)
        await self.send_json({"type": "subscribed", "services": names, **extra})
        await self.after_subscribed(content)

    async def unsubscribe(self, content: dict) -> None:
        names = self._names(content) or []
        for name in names:
            if name == "*":
                self.all_services = False
            else:
                self.watched.discard(name)
        still = {group for name in self._subscriptions() for group in self.groups_of(name)}
        for group in self.joined - still:
            await self.leave(group)
        self.joined &= still
        await self.send_json({"type": "unsubscribed", "services": names})

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", ()):
            await self.leave(group)

    def _subscriptions(self) -> list[str]:
        return [*self.watched, *(["*"] if self.all_services else [])]

    async def _join(self, groups: list[str]) -> None:
        for group in groups:
            if group not in self.joined:
                await self.join(group)
                self.joined.add(group)


async def refuse(consumer: AsyncJsonWebsocketConsumer, code: int) -> None:
    """Accept, then close with ``code``: a close code reaches a client only over an open
    connection (ASGI servers answer a close before the accept with an HTTP 403 handshake
    refusal, the same for every reason), and clients stop retrying on 4401/4403/4404."""
    await consumer.accept()
    await consumer.close(code=code)


class NoSuchSocket(AsyncJsonWebsocketConsumer):
    """Any websocket path no service serves: closed with 4404, not a 500."""

    async def connect(self) -> None:
        await refuse(self, CLOSE_NOT_FOUND)
