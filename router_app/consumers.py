"""Websocket of the router service: route changes of chosen services.

Send ``{"type": "subscribe", "services": ["orders", ...]}`` (``"*"`` for every service, where the
policy lets the caller read any).  The answer is ``{"type": "subscribed", "services",
"revisions": {name: revision}}``; then each change of a service's routes (an evaluation that moved
a weight or an ejection, a label, rule, rate limit or policy written) arrives as
``{"type": "change", "service", "revision", "why"}``: fetch ``/api/v1/router/routes/<name>/``
again.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from auth_app.access import TokenInfo, is_allowed
from platformsite.consumers import ServiceConsumer
from router_app import services

MAX_SUBSCRIPTIONS = 1000


@database_sync_to_async
def _allowed(token: TokenInfo | None, name: str) -> bool:
    if token is None:  # a staff session: admin
        return True
    resource = "router:" + ("-every-service-" if name == "*" else name)
    return is_allowed(
        account_id=token.account_id, scopes=token.scopes, resource=resource, action="read"
    ).allowed


@database_sync_to_async
def _revisions(names: list[str]) -> dict[str, int]:
    return {name: services.current_revision(name) for name in names}


class RouterConsumer(ServiceConsumer):
    service = "router"

    async def on_connected(self) -> None:
        self.watched: set[str] = set()
        self.all_services = False
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
            or not all(isinstance(n, str) and (n == "*" or services.SERVICE.matches(n)) for n in names)
            or len(self.watched) + len(names) > MAX_SUBSCRIPTIONS
        ):
            await self.error("invalid", f"'services' must be a list of up to {MAX_SUBSCRIPTIONS} names.")
            return
        names = list(dict.fromkeys(names))
        token = self.scope.get("token")
        denied = [name for name in names if not await _allowed(token, name)]
        if denied:
            await self.error("policy_denied", f"Not allowed to read: {', '.join(denied)[:500]}")
            return
        for name in names:
            if name == "*":
                self.all_services = True
                await self.channel_layer.group_add(services.ALL_GROUP, self.channel_name)
            else:
                self.watched.add(name)
                await self.channel_layer.group_add(services.group_name(name), self.channel_name)
        specific = [name for name in names if name != "*"]
        await self.send_json(
            {"type": "subscribed", "services": names, "revisions": await _revisions(specific)}
        )

    async def disconnect(self, code: int) -> None:
        for name in getattr(self, "watched", ()):
            await self.channel_layer.group_discard(services.group_name(name), self.channel_name)
        if getattr(self, "all_services", False):
            await self.channel_layer.group_discard(services.ALL_GROUP, self.channel_name)

    async def router_change(self, event: dict) -> None:
        if (event.get("group") == "all") != self.all_services:
            return  # a "*" subscriber takes the copy sent to everyone, others their service's copy
        await self.send_json(
            {
                "type": "change",
                "service": event["service"],
                "revision": event["revision"],
                "why": event["why"],
            }
        )
