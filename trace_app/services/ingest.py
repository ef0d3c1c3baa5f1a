"""Ingest: keep rules, then the spans and the calls they complete, in one transaction."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from platformsite import localstate
from trace_app import live
from trace_app.services import graph, keeping
from trace_app.store import get_store

#: Seconds a process remembers having recorded an operation or tag value (not written again).
NAMES_TTL = 60.0
_names: dict[tuple[str, ...], float] = {}
_names_stats = localstate.register_cache("trace.names_seen", size=lambda: len(_names), reset=_names.clear)
#: Most traces of one request pushed to the live dashboard.
LIVE_MAX = 50


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int


def _fresh(keys: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The keys this process has not recorded in the last NAMES_TTL seconds (``_recorded`` marks
    them once they are written: a batch the database refused leaves them to be written again)."""
    now = time.monotonic()
    fresh = [key for key in keys if now - _names.get(key, -NAMES_TTL) >= NAMES_TTL]
    _names_stats.hits += len(keys) - len(fresh)
    _names_stats.misses += len(fresh)
    return fresh


def _recorded(keys: list[tuple[str, ...]]) -> None:
    now = time.monotonic()
    if len(_names) > 100_000:
        _names.clear()
    for key in keys:
        _names[key] = now


_services: dict[str, Any] = {}
_services_stats = localstate.register_cache(
    "trace.services", size=lambda: len(_services.get("names", ())), reset=_services.clear
)


def _instrumented() -> set[str]:
    """The services that report spans (read at most every NAMES_TTL seconds per process)."""
    now = time.monotonic()
    if _services and now - _services["at"] < NAMES_TTL:
        _services_stats.hits += 1
        return _services["names"]
    _services_stats.misses += 1
    names = {op["service"] for op in get_store().operations()}
    _services.update(at=now, names=names)
    return names


def summaries(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per trace in a request's spans: its earliest span, duration, services and errors."""
    traces: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        traces[span["trace_id"]].append(span)
    lines = []
    for trace_id, group in list(traces.items())[:LIVE_MAX]:
        first = min(group, key=lambda s: (s["timestamp"], bool(s["parent_id"])))
        end = max(s["timestamp"] + s["duration"] for s in group)
        lines.append(
            {
                "trace_id": trace_id,
                "service": first["service"],
                "name": first["name"],
                "start": first["timestamp"],
                "duration": end - first["timestamp"],
                "span_count": len(group),
                "services": sorted({s["service"] for s in group}),
                "error": any(s["error"] for s in group),
            }
        )
    return lines


def ingest_spans(spans: list[dict[str, Any]]) -> IngestResult:
    """Store decoded spans (keep rules applied) and count the calls they complete."""
    kept = keeping.keep(spans)
    if not kept:
        return IngestResult(len(spans), 0)
    store = get_store()
    seen = int(time.time()) // 60 * 60_000_000
    operations = _fresh({("op", s["service"], s["name"], s["kind"], s["remote_service"]) for s in kept})
    keys = settings.TRACE_AUTOCOMPLETE_KEYS
    values = _fresh({("tag", key, s["tags"][key]) for s in kept for key in keys if key in s["tags"]})
    with transaction.atomic():
        calls = graph.edges(kept, store, _instrumented())
        store.write(kept)
        store.add_edges(calls)
        if operations:
            store.note_operations([op[1:] for op in operations], seen)
        if values:
            store.note_tag_values([value[1:] for value in values], seen)
    _recorded(operations + values)
    if settings.TRACE_LIVE_STREAM:
        transaction.on_commit(lambda: live.push(summaries(kept)))
    return IngestResult(len(spans), len(kept))
