"""Reads of the trace service: search, a trace, compare, the service graph, names seen."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.conf import settings

from trace_app import assembly
from trace_app.services.graph import bucket_value
from trace_app.store import TraceQuery, get_store


def stored_id(value: str) -> str:
    """A trace id as stored (32 hex), from its 16- or 32-hex form (validated by the caller)."""
    return value.lower().rjust(32, "0")


def search(query: TraceQuery, keep: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """Summaries of the newest traces with a span matching ``query``, newest first.

    ``keep`` (a summary -> whether the caller may see it: a policy narrowing a reader) applies
    before the limit, as the query's conditions do: the store is asked for more traces (up to
    ``TRACE_SEARCH_MAX``) until ``query.limit`` of them are kept or there are no more."""
    store = get_store()
    asked = query.limit
    while True:
        ids = store.find_trace_ids(replace(query, limit=asked))
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for span in store.spans(ids):
            by_trace[span["trace_id"]].append(span)
        # merged first, as a trace is shown: a span sent twice (an exporter retrying a batch that
        # was stored) or in fragments counts once
        found = [assembly.summary(assembly.merge(by_trace[t])) for t in ids if by_trace[t]]
        if keep is None:
            return found
        kept = [summary for summary in found if keep(summary)]
        if len(kept) >= query.limit or len(ids) < asked or asked >= settings.TRACE_SEARCH_MAX:
            return kept[: query.limit]
        asked = min(asked * 4, settings.TRACE_SEARCH_MAX)


def traces(trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored spans of these traces, by trace id (absent ones left out)."""
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in get_store().spans(stored_id(t) for t in trace_ids):
        by_trace[span["trace_id"]].append(span)
    return dict(by_trace)


def trace(trace_id: str, *, raw: bool = False) -> dict[str, Any] | None:
    """One trace, assembled (assembly.assemble); None when nothing of it is stored."""
    spans = traces([trace_id]).get(stored_id(trace_id), [])
    return assembly.assemble(spans, raw=raw)


def percentile(buckets: dict[int, int], share: float) -> float:
    """The latency (µs) under which ``share`` of the calls counted in ``buckets`` fall."""
    total = sum(buckets.values())
    if not total:
        return 0.0
    rank, seen = share * total, 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(buckets))


def graph(start: int, end: int) -> dict[str, Any]:
    """Calls between services from ``start`` to ``end`` (µs): per edge calls, errors, mean and
    percentile latencies (ms); per service calls in and out."""
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for count in get_store().edges(start // 60_000_000, end // 60_000_000):
        edge = edges.setdefault(
            (count.parent, count.child),
            {"parent": count.parent, "child": count.child, "calls": 0, "errors": 0, "sum": 0, "buckets": {}},
        )
        edge["calls"] += count.calls
        edge["errors"] += count.errors
        edge["sum"] += count.duration_sum
        edge["buckets"][count.bucket] = edge["buckets"].get(count.bucket, 0) + count.calls
    out = []
    for edge in sorted(edges.values(), key=lambda e: (e["parent"], e["child"])):
        calls, buckets = edge["calls"], edge.pop("buckets")
        out.append(
            {
                "parent": edge["parent"],
                "child": edge["child"],
                "calls": calls,
                "errors": edge["errors"],
                "error_rate": round(edge["errors"] / calls, 4) if calls else 0.0,
                "mean_ms": round(edge.pop("sum") / calls / 1000, 3) if calls else 0.0,
                **{f"p{p}_ms": round(percentile(buckets, p / 100) / 1000, 3) for p in (50, 90, 99)},
            }
        )
    return {"start": start, "end": end, "services": graph_services(out), "edges": out}


def graph_services(edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per service of ``edges``, its calls in and out and the errors of the calls it answered."""
    nodes: defaultdict[str, dict[str, int]] = defaultdict(
        lambda: {"calls_in": 0, "calls_out": 0, "errors_in": 0}
    )
    for edge in edges:
        nodes[edge["parent"]]["calls_out"] += edge["calls"]
        nodes[edge["child"]]["calls_in"] += edge["calls"]
        nodes[edge["child"]]["errors_in"] += edge["errors"]
    return [{"name": name, **counts} for name, counts in sorted(nodes.items())]


def service_names() -> list[str]:
    return sorted({op["service"] for op in get_store().operations()})


def span_names(service: str) -> list[str]:
    return sorted({op["name"] for op in get_store().operations() if op["service"] == service and op["name"]})


def remote_services(service: str) -> list[str]:
    ops = get_store().operations()
    return sorted({op["remote_service"] for op in ops if op["service"] == service and op["remote_service"]})


def services_overview() -> list[dict[str, Any]]:
    """Each service with its operations (name, kind) and when it was last seen (µs)."""
    services: dict[str, dict[str, Any]] = {}
    for op in get_store().operations():
        entry = services.setdefault(op["service"], {"name": op["service"], "operations": [], "last_seen": 0})
        entry["operations"].append({"name": op["name"], "kind": op["kind"] or "INTERNAL"})
        entry["last_seen"] = max(entry["last_seen"], op["last_seen"])
    for entry in services.values():
        entry["operations"] = sorted(
            {(o["name"], o["kind"]): o for o in entry["operations"]}.values(), key=str
        )
    return sorted(services.values(), key=lambda e: e["name"])


def tag_values(key: str) -> list[str]:
    return get_store().tag_values(key)
