"""``/ws/events/``: live events matching a filter, resumable with ``last_event_id``.

Filter at connect (``?types=order.*,user.created&sources=...&subject_prefix=...&last_event_id=N``,
or ``?subscription=<name>`` for a stored subscription's filter), or later with a message
``{"type": "subscribe", "types": [...], "sources": [...], "subject_prefix": "", "last_event_id": N}``.
With ``last_event_id`` the stored matching events after it are replayed first (in id order, at
most EVENTS_WS_REPLAY_MAX), then live ones follow; an event both replayed and pushed live is sent
once.  The consumer joins the live group before it reads the replay, and Channels handles the
queued live messages only after the replay is sent, so nothing falls between.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from auth_app.access import TokenInfo, is_allowed
from auth_app.policy import PolicyError
from event_app.cloudevents import UNSTORABLE_TEXT
from event_app.filters import EventFilter, too_many, type_resource
from event_app.live import LIVE_GROUP
from event_app.models import Event, Subscription
from event_app.representation import event_dict
from platformsite.consumers import ServiceConsumer
from platformsite.jsonvalues import UNSTORABLE_CHARS

REPLAY_PAGE = 500


@database_sync_to_async
def _replay_page(event_filter: EventFilter, after: int, limit: int) -> list[dict[str, Any]]:
    events = Event.objects.filter(event_filter.q(), id__gt=after).order_by("id")[:limit]
    return [event_dict(e) for e in events]


@database_sync_to_async
def _latest_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


@database_sync_to_async
def _stored_filter(name: str) -> EventFilter | None:
    subscription = Subscription.objects.filter(name=name, is_active=True).first()
    if subscription is None:
        return None
    return EventFilter.of(subscription.types, subscription.sources, subscription.subject_prefix)


#: How long a stream remembers whether its caller may read an event type: a policy change reaches
#: an open stream within it.
READABLE_SECONDS = 10.0


def _may_read(token: TokenInfo, type_: str) -> bool:
    """May the token's holder read events of ``type_`` (a prefix ``order.*``: every type under it)?"""
    try:
        return is_allowed(
            account_id=token.account_id, scopes=token.scopes, resource=type_resource(type_), action="read"
        ).allowed
    except PolicyError:
        return False


@database_sync_to_async
def _readable(token: TokenInfo, types: set[str]) -> dict[str, bool]:
    """For each event type: may the token's holder read its events?"""
    return {type_: _may_read(token, type_) for type_ in types}


@database_sync_to_async
def _allowed(token: TokenInfo, types: tuple[str, ...]) -> bool:
    """May the token's holder subscribe to ``types`` (none: every type)?"""
    return all(_may_read(token, type_) for type_ in types or ("*",))


def _int(value: Any) -> int | None:
    """A resume point (negative: from the start); None when not given; ValueError unless an integer."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value):
        return max(0, int(value))
    if isinstance(value, int) and not isinstance(value, bool) and value < 2**63:
        return max(0, value)
    raise ValueError("last_event_id is an event id (an integer)")


def _problem(params: dict[str, Any]) -> str:
    """What is wrong with a filter's parameters (a query string's or a subscribe message's), or ""."""
    for name, listed in (
        ("types", True),
        ("sources", True),
        ("subject_prefix", False),
        ("subscription", False),
    ):
        value = params.get(name)
        items = value if listed and isinstance(value, list) else [] if value is None else [value]
        if not all(isinstance(item, str) for item in items):
            return f"{name} is {'a list of strings or ' if listed else ''}a string"
        if any(UNSTORABLE_CHARS.search(item) for item in items):
            return f"{name} {UNSTORABLE_TEXT}"
        if listed and (problem := too_many(name, value)):
            return problem
    return ""


class EventStreamConsumer(ServiceConsumer):
    service = "events"

    async def on_connected(self) -> None:
        #: None until a subscription succeeds: a refused one must not stream everything.
        self.filter: EventFilter | None = None
        self.replayed: set[int] = set()
        #: event type -> may the caller read it (all asked again READABLE_SECONDS after readable_at)
        self.readable: dict[str, bool] = {}
        self.readable_at = 0.0
        query = self.scope.get("query_string", b"").decode("utf-8", errors="replace")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        await self.join(LIVE_GROUP)
        await self.subscribe(params)

    async def disconnect(self, code: int) -> None:
        await self.leave(LIVE_GROUP)

    async def subscribe(self, params: dict[str, Any]) -> None:
        try:
            problem = _problem(params)
            last_event_id = _int(params.get("last_event_id"))
        except ValueError as exc:
            problem = str(exc)
        if problem:
            await self.error("invalid", problem)
            return
        event_filter = EventFilter.of(
            params.get("types"), params.get("sources"), params.get("subject_prefix")
        )
        if name := params.get("subscription"):
            stored = await _stored_filter(str(name))
            if stored is None:
                await self.error("not_found", f"No subscription {name!r}.")
                return
            event_filter = stored
        token = self.scope.get("token")
        if isinstance(token, TokenInfo) and not await _allowed(token, event_filter.types):
            await self.error("policy_denied", "Not allowed.")
            await self.close(code=4403)
            return
        self.filter = event_filter
        # The newest stored event when the subscription starts (after joining the live group):
        # a client without a resume point of its own resumes from it if it loses the connection
        # before its first event.
        await self.send_json(
            {
                "type": "subscribed",
                "filter": event_filter.as_dict(),
                "last_event_id": last_event_id,
                "latest_event_id": await _latest_id(),
            }
        )
        if last_event_id is not None:
            await self.replay(last_event_id)

    async def replay(self, after: int) -> None:
        self.replayed = set()
        budget = settings.EVENTS_WS_REPLAY_MAX
        while budget > 0:
            wanted = min(REPLAY_PAGE, budget)
            page = await _replay_page(self.filter, after, wanted)
            shown = {event["id"] for event in await self.visible(page)}
            for event in page:
                if event["id"] in shown:
                    await self.send_json({"type": "event", "event": event})
                    self.replayed.add(event["id"])
                after = event["id"]
            budget -= len(page)
            if len(page) < wanted:
                await self.send_json({"type": "replay.done", "last_event_id": after})
                return
        if await _replay_page(self.filter, after, 1):
            # More was stored than one replay may send: the client resumes from here.
            await self.send_json({"type": "replay.truncated", "last_event_id": after})
            return
        await self.send_json({"type": "replay.done", "last_event_id": after})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "subscribe":
            await self.subscribe(content)
        else:
            await self.error("unknown_message", f"{kind!r}?")

    async def visible(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``events`` without those whose type the caller may not read (a filter by prefix, or of
        every type, takes types a rule may deny one by one), as a search leaves them out."""
        token = self.scope.get("token")
        if not isinstance(token, TokenInfo) or not events:
            return events  # a dashboard session: staff, who may read every event
        now = time.monotonic()
        if now - self.readable_at > READABLE_SECONDS:
            self.readable, self.readable_at = {}, now
        unknown = {event["type"] for event in events} - self.readable.keys()
        if unknown:
            self.readable.update(await _readable(token, unknown))
        return [event for event in events if self.readable[event["type"]]]

    async def events_live(self, message: dict[str, Any]) -> None:
        if self.filter is None:
            return
        wanted = [
            event
            for event in message["events"]
            if event["id"] not in self.replayed
            and self.filter.matches(event["type"], event["source"], event["subject"])
        ]
        for event in await self.visible(wanted):
            await self.send_json({"type": "event", "event": event})
