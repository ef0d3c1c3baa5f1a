"""``/ws/trace/``: the summaries of traces as they are ingested (the dashboard's live list).

Each message is ``{"type": "traces", "traces": [summary, ...]}``, one per ingest request (a
summary covers that request's spans of one trace).  Optional filter at connect:
``?service=<name>`` (traces with a span of that service) and ``?errors=true`` (the API's flag
spellings; any other value is an ``invalid`` error frame and the socket closes with 4400).  The
caller's policy must allow reading ``trace:<service>``, else a ``policy_denied`` frame and
4403; a summary is sent only when the caller may read each of its services (as searches keep).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from rest_framework.exceptions import ValidationError

from platformsite.api.validators import flag
from platformsite.consumers import CLOSE_FORBIDDEN, CLOSE_INVALID, ServiceConsumer
from trace_app.api.serializers import SearchSerializer
from trace_app.live import LIVE_GROUP


class TraceStreamConsumer(ServiceConsumer):
    service = "trace"

    async def on_connected(self) -> None:
        params = {k: v[-1] for k, v in parse_qs(self.scope.get("query_string", b"").decode()).items()}
        self.only_service = params.get("service", "")
        try:
            self.only_errors = flag(params["errors"]) if "errors" in params else False
        except ValueError as exc:
            return await self._refuse(f"errors: {exc}")
        if self.only_service:  # checked as a search checks it
            try:
                SearchSerializer().fields["service"].run_validation(self.only_service)
            except ValidationError as exc:
                return await self._refuse(f"service: {' '.join(map(str, exc.detail))}")
        if self.only_service and not await self.may_read(self.only_service):  # as a search by service
            await self.error("policy_denied", f"Not allowed to read: {self.only_service}")
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.readable: dict[str, bool] = {}  # service -> may read it, decided once per connection
        await self.join(LIVE_GROUP)
        await self.send_json({"type": "subscribed", "service": self.only_service, "errors": self.only_errors})

    async def _refuse(self, message: str) -> None:
        await self.error("invalid", message)
        await self.close(code=CLOSE_INVALID)

    async def _readable(self, services: list[str]) -> bool:
        """Whether the caller may read each service of a summary (as a search keeps traces)."""
        for name in services:
            if name not in self.readable:
                self.readable[name] = await self.may_read(name)
            if not self.readable[name]:
                return False
        return True

    async def disconnect(self, code: int) -> None:
        await self.leave(LIVE_GROUP)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            await self.error("unknown_message", f"{kind!r}?")

    async def trace_live(self, message: dict[str, Any]) -> None:
        traces = [
            t
            for t in message["traces"]
            if (not self.only_service or self.only_service in t["services"])
            and (t["error"] or not self.only_errors)
            and await self._readable(t["services"])
        ]
        if traces:
            await self.send_json({"type": "traces", "traces": traces})
