"""The live service graph, built at ingest: an edge per call from one service to another.

A call is a pair of spans of two services where one is the other's parent: a client span and the
server span under it (OTLP: the server's parent id; Zipkin: a shared server span with the client's
own id), a producer and its consumer, or any span and a child in another service.  Each pair is
counted once, by the ingest request that brings its second half: halves in the same request are
paired there, and each half that arrives later finds the other in the store (one query per
request).  Halves of one pair arriving in two requests at the same instant can be missed (not
counted twice).  A client or producer span whose peer never reports (a database, a queue, a
third-party API) is counted against its remote service at once, when that name is not a service
that reports spans of its own.

A call's latency is the client's view when there is a client span, else the server's; it is
an error when either half of a client/server (producer/consumer) pair
is, else when the child is (a failing server span is not an error of each call it made).
Counters are per minute and latency bucket (``Edge``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from trace_app.store.base import EdgeCount, SpanStore

CALLERS = frozenset({"CLIENT", "PRODUCER"})
#: Latency buckets per doubling (a bucket's bounds are 2**(b/4) and 2**((b+1)/4) µs: ±9%).
BUCKETS_PER_DOUBLING = 4


def bucket(duration: int) -> int:
    return int(math.log2(max(duration, 1)) * BUCKETS_PER_DOUBLING)


def bucket_value(index: int) -> float:
    """A bucket's representative latency in µs (the geometric middle of its bounds)."""
    return 2 ** ((index + 0.5) / BUCKETS_PER_DOUBLING)


def _caller_key(span: dict[str, Any]) -> tuple[str, str] | None:
    if span["shared"]:
        return span["trace_id"], span["span_id"]
    if span["parent_id"]:
        return span["trace_id"], span["parent_id"]
    return None


def _identity(span: dict[str, Any]) -> tuple[str, str, str, bool]:
    return span["trace_id"], span["span_id"], span["service"], bool(span["shared"])


def _parent(child: dict[str, Any], candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The span ``child`` hangs under, among spans sharing its caller key (None if absent).

    A shared server half hangs under the client half with its id; any other span under the span
    its parent id names, the server half of a shared pair first when it is in the child's service.
    """
    if child["shared"]:
        return next((c for c in candidates if c["span_id"] == child["span_id"] and not c["shared"]), None)
    named = [c for c in candidates if c["span_id"] == child["parent_id"] and c is not child]
    same = next((c for c in named if c["shared"] and c["service"] == child["service"]), None)
    return same or next((c for c in named if not c["shared"]), None) or next(iter(named), None)


def edges(spans: list[dict[str, Any]], store: SpanStore, instrumented: set[str]) -> list[EdgeCount]:
    """The calls that the spans of one ingest request complete (call before storing them)."""
    by_id: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        by_id[(span["trace_id"], span["span_id"])].append(span)
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with_child: set[int] = set()
    unresolved: list[dict[str, Any]] = []
    for span in spans:
        key = _caller_key(span)
        if key is None:
            continue
        parent = _parent(span, by_id.get(key, []))
        if parent is None:
            unresolved.append(span)
        elif parent["service"] != span["service"]:
            pairs.append((parent, span))
            with_child.add(id(parent))
        else:
            with_child.add(id(parent))
    stored = store.halves(
        {span["trace_id"] for span in spans},
        {key[1] for span in unresolved if (key := _caller_key(span))} | {span["span_id"] for span in spans},
    )
    if stored:
        stored_by_id = defaultdict(list)
        stored_by_caller = defaultdict(list)
        for half in stored:
            stored_by_id[(half["trace_id"], half["span_id"])].append(half)
            if key := _caller_key(half):
                stored_by_caller[key].append(half)
        for span in unresolved:
            parent = _parent(span, stored_by_id.get(_caller_key(span), []))
            if parent is not None and parent["service"] != span["service"]:
                pairs.append((parent, span))
        for span in spans:
            for child in stored_by_caller.get((span["trace_id"], span["span_id"]), ()):
                parent = _parent(child, [*stored_by_id.get(_caller_key(child), []), span])
                if parent is span:
                    with_child.add(id(span))
                    if span["service"] != child["service"]:
                        pairs.append((span, child))
    # A span sent again (an exporter retrying a batch that was stored) completed its calls when it
    # was first stored: a call between two such spans, or to a remote service, is not counted again.
    already = {_identity(half) for half in stored}

    def resent(span: dict[str, Any]) -> bool:
        return _identity(span) in already

    counts: Counter[tuple[int, str, str, int]] = Counter()
    errors: Counter[tuple[int, str, str, int]] = Counter()
    durations: Counter[tuple[int, str, str, int]] = Counter()

    def count(caller: dict[str, Any], callee: str, duration: int, error: bool) -> None:
        key = (caller["timestamp"] // 60_000_000, caller["service"], callee, bucket(duration))
        counts[key] += 1
        errors[key] += error
        durations[key] += duration

    for parent, child in pairs:
        if resent(parent) and resent(child):
            continue
        calling = parent["kind"] in CALLERS  # the client half of this very call
        view = parent if calling else child
        # A server span that calls several services fails as a whole: its error is not this call's.
        count(parent, child["service"], view["duration"], (calling and parent["error"]) or child["error"])
    for span in spans:
        if (
            span["kind"] in CALLERS
            and span["remote_service"]
            and id(span) not in with_child
            and span["remote_service"] not in instrumented
            and not resent(span)
        ):
            count(span, span["remote_service"], span["duration"], span["error"])
    return [EdgeCount(*key, counts[key], errors[key], durations[key]) for key in counts]
