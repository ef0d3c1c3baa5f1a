"""A stored trace made readable: fragments merged, halves of one RPC joined, a tree in start
order, and clock skew between hosts adjusted (unless ``raw``).

Merging follows Zipkin: the fragments of one span (same id, same service, same shared flag) are
one span; a server half that shares its client's id (Zipkin's ``shared``) hangs under that client
span and takes the client's parent when it has none.  Skew: a server span that starts before the
client span that called it, or ends after it, was timed by a clock that differs from the client's;
it and everything under it are moved to sit centred in the client span (``skew`` says by how many
µs).  ``raw=True`` leaves every time as reported.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

Key = tuple[str, bool]


def merge(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One span per (id, service, shared): fragments merged (Zipkin's rules)."""
    merged: dict[tuple[str, str, bool], dict[str, Any]] = {}
    for span in sorted(spans, key=lambda s: s["timestamp"]):
        key = (span["span_id"], span["service"], span["shared"])
        into = merged.get(key)
        if into is None:
            merged[key] = {**span, "tags": dict(span["tags"]), "annotations": list(span["annotations"])}
            continue
        end = max(into["timestamp"] + into["duration"], span["timestamp"] + span["duration"])
        into["duration"] = end - into["timestamp"]
        for field in ("parent_id", "name", "kind", "remote_service"):
            into[field] = into[field] or span[field]
        into["error"] = into["error"] or span["error"]
        into["tags"].update(span["tags"])
        into["annotations"] = sorted(
            {(a["timestamp"], a["value"]): a for a in into["annotations"] + span["annotations"]}.values(),
            key=lambda a: a["timestamp"],
        )
    clients = {s["span_id"]: s for s in merged.values() if not s["shared"]}
    for span in merged.values():
        if span["shared"] and not span["parent_id"] and span["span_id"] in clients:
            span["parent_id"] = clients[span["span_id"]]["parent_id"]
    return list(merged.values())


def _parent_key(span: dict[str, Any], nodes: dict[Key, dict[str, Any]]) -> Key | None:
    if span["shared"]:
        return (span["span_id"], False) if (span["span_id"], False) in nodes else None
    parent = span["parent_id"]
    if not parent:
        return None
    server = nodes.get((parent, True))
    if server is not None and server["service"] == span["service"]:
        return (parent, True)
    return (parent, False) if (parent, False) in nodes else None


def _shift(node: dict[str, Any], delta: int, children: dict[Key, list[dict[str, Any]]]) -> None:
    """Move a span and everything under it by ``delta`` µs."""
    stack, seen = [node], set()
    while stack:
        span = stack.pop()
        key = (span["span_id"], span["shared"])
        if key in seen:
            continue
        seen.add(key)
        span["timestamp"] += delta
        span["skew"] += delta
        stack.extend(children.get(key, ()))


def assemble(spans: list[dict[str, Any]], *, raw: bool = False) -> dict[str, Any] | None:
    """The trace's spans as a tree in display order, with ``depth`` and ``skew``; None if none."""
    if not spans:
        return None
    merged = merge(spans)
    nodes: dict[Key, dict[str, Any]] = {(s["span_id"], s["shared"]): {**s, "skew": 0} for s in merged}
    children: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    roots = []
    for node in nodes.values():
        parent = _parent_key(node, nodes)
        if parent is None or parent == (node["span_id"], node["shared"]):
            roots.append(node)
        else:
            children[parent].append(node)
    ordered: list[dict[str, Any]] = []
    adjusted = False
    seen: set[Key] = set()
    # Depth first, children in start order; a loop of parent ids (bad data) cannot hang it: a
    # span already placed is not placed again, and spans only reachable through a loop are roots.
    for root in [*sorted(roots, key=lambda s: s["timestamp"]), *nodes.values()]:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            key = (node["span_id"], node["shared"])
            if key in seen:
                continue
            seen.add(key)
            node["depth"] = depth
            ordered.append(node)
            kids = sorted(children.get(key, ()), key=lambda s: s["timestamp"])
            for child in kids:
                if not raw and node["service"] != child["service"] and node["kind"] in ("CLIENT", ""):
                    start, end = node["timestamp"], node["timestamp"] + node["duration"]
                    if child["timestamp"] < start or child["timestamp"] + child["duration"] > end:
                        latency = max(0, node["duration"] - child["duration"]) // 2
                        _shift(child, start + latency - child["timestamp"], children)
                        adjusted = True
            stack.extend((child, depth + 1) for child in reversed(kids))
    start = min(s["timestamp"] for s in ordered)
    end = max(s["timestamp"] + s["duration"] for s in ordered)
    root = ordered[0]
    return {
        "trace_id": root["trace_id"],
        "root_service": root["service"],
        "root_name": root["name"],
        "start": start,
        "duration": end - start,
        "span_count": len(ordered),
        "services": dict(Counter(s["service"] for s in ordered).most_common()),
        "error": any(s["error"] for s in ordered),
        "adjusted": adjusted,
        "spans": ordered,
    }


def summary(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A trace's search line: root service and operation, start, duration, services, errors."""
    roots = [s for s in spans if not s["parent_id"]] or spans
    root = min(roots, key=lambda s: s["timestamp"])
    start = min(s["timestamp"] for s in spans)
    end = max(s["timestamp"] + s["duration"] for s in spans)
    return {
        "trace_id": root["trace_id"],
        "root_service": root["service"],
        "root_name": root["name"],
        "start": start,
        "duration": end - start,
        "span_count": len(spans),
        "services": dict(Counter(s["service"] for s in spans).most_common()),
        "error": any(s["error"] for s in spans),
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two assembled traces side by side: spans matched by (service, operation), their counts and
    total durations in each, and the difference (b - a), largest differences first."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for side, trace in (("a", a), ("b", b)):
        for span in trace["spans"]:
            row = rows.setdefault(
                (span["service"], span["name"]),
                {
                    "service": span["service"],
                    "name": span["name"],
                    "a": {"count": 0, "duration": 0, "errors": 0},
                    "b": {"count": 0, "duration": 0, "errors": 0},
                },
            )
            row[side]["count"] += 1
            row[side]["duration"] += span["duration"]
            row[side]["errors"] += span["error"]
    for row in rows.values():
        row["difference"] = row["b"]["duration"] - row["a"]["duration"]
        row["only_in"] = "a" if not row["b"]["count"] else "b" if not row["a"]["count"] else None
    matched = sorted(rows.values(), key=lambda r: (-abs(r["difference"]), r["service"], r["name"]))
    return {
        "a": {k: a[k] for k in ("trace_id", "root_service", "root_name", "start", "duration", "span_count")},
        "b": {k: b[k] for k in ("trace_id", "root_service", "root_name", "start", "duration", "span_count")},
        "difference": b["duration"] - a["duration"],
        "spans": matched,
    }
