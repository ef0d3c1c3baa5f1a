"""Pushing stored events to websocket subscribers (``/ws/events/``) through the channel layer.

The push does not wait for a networked channel layer (``platformsite.live``); a subscriber that
misses one resumes with ``last_event_id``.
"""

from __future__ import annotations

from platformsite.live import LivePush

LIVE_GROUP = "events.live"
#: Most events in one group message (keeps channel-layer messages small).
LIVE_CHUNK = 500

pusher = LivePush(LIVE_GROUP, "events.live", key="events", chunk=LIVE_CHUNK, thread="events-live-sender")
push = pusher.push
