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

from platformsite.consumers import ServiceWatchConsumer
from router_app import services


@database_sync_to_async
def _revisions(names: list[str]) -> dict[str, int]:
    return {name: services.current_revision(name) for name in names}


class RouterConsumer(ServiceWatchConsumer):
    service = "router"

    def groups_of(self, name: str) -> list[str]:
        return [services.ALL_GROUP if name == "*" else services.group_name(name)]

    async def subscribed(self, names: list[str], content: dict) -> dict[str, Any]:
        return {"revisions": await _revisions(names)}

    async def router_change(self, event: dict) -> None:
        if self.takes(event):
            await self.send_json(
                {
                    "type": "change",
                    "service": event["service"],
                    "revision": event["revision"],
                    "why": event["why"],
                }
            )
