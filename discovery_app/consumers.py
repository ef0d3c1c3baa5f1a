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

from discovery_app import selectors, services
from discovery_app.models import Result
from platformsite.consumers import ServiceWatchConsumer

MAX_REPLAY = 1000


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


class DiscoveryConsumer(ServiceWatchConsumer):
    service = "discovery"

    def groups_of(self, name: str) -> list[str]:
        return [services.ALL_GROUP if name == "*" else services.group_name(name)]

    def invalid(self, content: dict) -> str | None:
        since = content.get("since")
        if since is None:
            return None
        if not isinstance(since, dict) or not all(
            isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in since.values()
        ):
            return "'since' must map service names to indexes (whole numbers from 0)."
        return None

    async def subscribed(self, names: list[str], content: dict) -> dict[str, Any]:
        return {"indexes": await _indexes(names)}

    async def after_subscribed(self, content: dict) -> None:
        wanted = {k: v for k, v in (content.get("since") or {}).items() if k in self.watched}
        for result in await _replay(wanted):
            await self.send_json({"type": "replay", "result": result})

    async def discovery_change(self, event: dict) -> None:
        if self.takes(event):
            await self.send(text_data=event["text"])

    async def discovery_registry(self, event: dict) -> None:
        await self.send_json({"type": "registry", "degraded": event["degraded"], "state": event["state"]})
