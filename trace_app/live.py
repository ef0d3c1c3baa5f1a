"""Pushing the summaries of ingested traces to ``/ws/trace/`` (the dashboard's live list)."""

from __future__ import annotations

from platformsite.live import LivePush

LIVE_GROUP = "trace.live"

pusher = LivePush(LIVE_GROUP, "trace.live", key="traces", chunk=200, thread="trace-live-sender")
push = pusher.push
