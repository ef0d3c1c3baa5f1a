"""Websocket of the monitor service: a live connection check for dashboards and the SDK."""

from __future__ import annotations

import time
from typing import Any

from platformsite.consumers import ServiceConsumer


class MonitorConsumer(ServiceConsumer):
    service = "monitor"

    async def on_connected(self) -> None:
        await self.send_json({"type": "hello", "service": self.service, "subject": self.subject})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "time": round(time.time(), 3)})
        else:
            await self.error("unknown_message", 'Send {"type": "ping"}.')
