"""Websocket of the discovery service: live changes of chosen services.

Send ``{"type": "subscribe", "services": ["orders", ...]}`` (``"*"`` for every service; a
``"since": {"orders": 12}`` replays the results after those indexes from the watch history).
Each change arrives as ``{"type": "change", "service", "index", "results": [...], "document"}``
where ``document`` is the service's whole document after the change (None once it has no
nodes); ``{"type": "registry", "degraded": bool, "state"}`` tells when the safety valve trips
or clears.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from auth_app.access import TokenInfo, is_allowed
from discovery_app import selectors, services
from discovery_app.models import Result
from platformsite.consumers import ServiceConsumer

MAX_SUBSCRIPTIONS = 1000
MAX_REPLAY = 1000


@database_sync_to_async
def _allowed(token: TokenInfo | None, name: str) -> bool:
    if token is None:  # a staff session: admin
        return True
    # "*" (every service) is allowed only where a rule would allow any name, e.g. "discovery:*".
    resource = "discovery:" + ("-every-service-" if name == "*" else name)
    return is_allowed(
        account_id=token.account_id, scopes=token.scopes, resource=resource, action="read"
    ).allowed


@database_sync_to_async
def _indexes(names: list[str]) -> dict[str, int]:
    return {name: selectors.current_index(name) for name in names}


@database_sync_to_async
def _replay(since: dict[str, int]) -> list[dict[str, Any]]:
    found = []
    for name, index in since.items():
        results = Result.objects.filter(service=name, index__gt=index).order_by("index")[:MAX_REPLAY]
        found += [services.result_data(result) for result in results]
    return found


class DiscoveryConsumer(ServiceConsumer):
    service = "discovery"

    async def on_connected(self) -> None:
        self.watched: set[str] = set()
        self.all_services = False
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
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return None
        if not all(name == "*" or services.SERVICE_NAME.match(name) for name in names):
            return None
        return list(dict.fromkeys(names))

    async def subscribe(self, content: dict) -> None:
        names = self._names(content)
        if names is None or len(self.watched) + len(names) > MAX_SUBSCRIPTIONS:
            await self.error("invalid", f"'services' must be a list of up to {MAX_SUBSCRIPTIONS} names.")
            return
        token = self.scope.get("token")
        denied = [name for name in names if not await _allowed(token, name)]
        if denied:
            await self.error("policy_denied", f"Not allowed to read: {', '.join(denied)}")
            return
        for name in names:
            if name == "*":
                self.all_services = True
                await self.channel_layer.group_add(services.ALL_GROUP, self.channel_name)
            else:
                self.watched.add(name)
                await self.channel_layer.group_add(services.group_name(name), self.channel_name)
        specific = [name for name in names if name != "*"]
        await self.send_json({"type": "subscribed", "services": names, "indexes": await _indexes(specific)})
        since = content.get("since")
        if isinstance(since, dict):
            wanted = {k: v for k, v in since.items() if k in self.watched and isinstance(v, int)}
            for result in await _replay(wanted):
                await self.send_json({"type": "replay", "result": result})

    async def unsubscribe(self, content: dict) -> None:
        names = self._names(content) or []
        for name in names:
            if name == "*":
                self.all_services = False
                await self.channel_layer.group_discard(services.ALL_GROUP, self.channel_name)
            elif name in self.watched:
                self.watched.discard(name)
                await self.channel_layer.group_discard(services.group_name(name), self.channel_name)
        await self.send_json({"type": "unsubscribed", "services": names})

    async def disconnect(self, code: int) -> None:
        for name in getattr(self, "watched", ()):
            await self.channel_layer.group_discard(services.group_name(name), self.channel_name)
        if getattr(self, "all_services", False):
            await self.channel_layer.group_discard(services.ALL_GROUP, self.channel_name)

    async def discovery_change(self, event: dict) -> None:
        if (event.get("scope") == "all") != self.all_services:
            return  # a "*" subscriber takes the copy sent to everyone, others their service's copy
        await self.send(text_data=event["text"])

    async def discovery_registry(self, event: dict) -> None:
        await self.send_json({"type": "registry", "degraded": event["degraded"], "state": event["state"]})
