"""Websocket of the monitor service: the fleet's flips, live.

Send ``{"type": "subscribe", "services": ["orders", ...]}`` (``"*"`` for every service, allowed
only where a policy rule would allow any name).  Each stored flip of a check or a service of
those arrives as ``{"type": "flip", "flip": {...}}`` once its transaction has committed (the
shape of ``GET /api/v1/monitor/flips/``).
"""

from __future__ import annotations

from monitor_app.services.alerts import LIVE_GROUP
from platformsite.consumers import ServiceWatchConsumer


class MonitorConsumer(ServiceWatchConsumer):
    service = "monitor"

    def groups_of(self, name: str) -> list[str]:
        return [LIVE_GROUP]  # one group for the fleet's flips, filtered here by service

    async def monitor_live(self, event: dict) -> None:
        message = event["message"]
        if self.watches((message.get("flip") or {}).get("service")):
            await self.send_json(message)
