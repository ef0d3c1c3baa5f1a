"""Websocket of the monitor service: the fleet's flips, live.

Send ``{"type": "subscribe", "services": ["orders", ...]}`` (``"*"`` for every service, allowed
only where a policy rule would allow any name).  Each stored flip of a check or a service of
those arrives as ``{"type": "flip", "flip": {...}}`` once its transaction has committed (the
shape of ``GET /api/v1/monitor/flips/``).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from auth_app.access import TokenInfo, is_allowed
from monitor_app.services.alerts import LIVE_GROUP
from monitor_app.services.names import SERVICE_NAME
from platformsite.consumers import ServiceConsumer

MAX_SUBSCRIPTIONS = 1000


@database_sync_to_async
def _allowed(token: TokenInfo | None, name: str) -> bool:
    if token is None:  # a staff session: admin
        return True
    resource = "monitor:" + ("-every-service-" if name == "*" else name)
    return is_allowed(
        account_id=token.account_id, scopes=token.scopes, resource=resource, action="read"
    ).allowed


class MonitorConsumer(ServiceConsumer):
    service = "monitor"

    async def on_connected(self) -> None:
        self.watched: set[str] = set()
        self.all_services = False
        self.joined = False
        await self.send_json({"type": "hello", "service": self.service, "subject": self.subject})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "subscribe":
            await self.subscribe(content)
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("unknown_message", 'Send {"type": "subscribe", "services": [...]}.')

    async def subscribe(self, content: dict) -> None:
        names = content.get("services")
        if (
            not isinstance(names, list)
            or not all(name == "*" or SERVICE_NAME.matches(name) for name in names)
            or len(self.watched) + len(names) > MAX_SUBSCRIPTIONS
        ):
            await self.error(
                "invalid", f"'services' must be a list of up to {MAX_SUBSCRIPTIONS} names or '*'."
            )
            return
        names = list(dict.fromkeys(names))
        token = self.scope.get("token")
        denied = [name for name in names if not await _allowed(token, name)]
        if denied:
            await self.error("policy_denied", f"Not allowed to read: {', '.join(denied)}")
            return
        self.all_services = self.all_services or "*" in names
        self.watched.update(name for name in names if name != "*")
        if not self.joined:
            await self.channel_layer.group_add(LIVE_GROUP, self.channel_name)
            self.joined = True
        await self.send_json({"type": "subscribed", "services": names})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(LIVE_GROUP, self.channel_name)

    async def monitor_live(self, event: dict) -> None:
        message = event["message"]
        service = (message.get("flip") or {}).get("service")
        if self.all_services or service in self.watched:
            await self.send_json(message)
