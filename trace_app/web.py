"""The trace dashboard: search with live traces, the waterfall, the service graph, compare.

Pages are drawn on the server (bars and the graph are computed here, so they are tested in
Python); the only script is the live list's websocket (``/ws/trace/``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from platformsite.api.errors import PlatformError
from platformsite.api.validators import flag
from platformsite.web import staff_required
from trace_app import assembly, query, selectors
from trace_app.store import TraceQuery

PALETTE = ["#3867d6", "#20bf6b", "#fa8231", "#8854d0", "#0fb9b1", "#f7b731", "#4b6584", "#eb3b5a"]
ERROR_COLOR = "#eb3b5a"
LOOKBACKS = [(1, "last hour"), (6, "last 6 hours"), (24, "last day"), (168, "last 7 days")]
GRAPH_COLUMN, GRAPH_ROW, NODE_W, NODE_H = 380, 70, 150, 36


def colors(services: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(services)))}


def when(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def ms(us: int) -> str:
    return f"{us / 1000:.3f}".rstrip("0").rstrip(".") + " ms" if us < 1_000_000 else f"{us / 1_000_000:.3f} s"


def _search_query(params: Any) -> tuple[TraceQuery, dict[str, Any]]:
    """The search form's query; ValueError with a message when a field cannot be read."""
    form = {
        key: params.get(key, "")
        for key in ("service", "operation", "tag", "word", "min_ms", "max_ms", "hours", "error")
    }
    if any("\x00" in value for value in form.values()):  # PostgreSQL refuses NUL in text
        raise ValueError("The search must not contain NUL characters.")
    hours = int(form["hours"]) if form["hours"].isdigit() else 0 if form["hours"] else 1
    if hours not in dict(LOOKBACKS):
        raise ValueError("Pick a time range from the list.")
    tags, words = [], form["word"].split()
    given = [t for t in (t.strip() for t in form["tag"].split(",")) if t]
    for label, count in (("Tags", len(given)), ("Words", len(words))):
        try:
            query.check_terms(count, label)
        except PlatformError as exc:  # as the API's: each term is a condition of the database's query
            raise ValueError(str(exc)) from None
    for term in given:
        key, eq, value = term.partition("=")
        if not eq or not key:
            raise ValueError(f"Tag {term!r} is not key=value.")
        tags.append((key.strip(), value.strip()))
    durations = []
    for field, label in (("min_ms", "Min duration (ms)"), ("max_ms", "Max duration (ms)")):
        try:
            durations.append(query.milliseconds(form[field], label) if form[field] else None)
        except PlatformError as exc:  # as the API's search: "1e306", "inf", a negative number
            raise ValueError(str(exc)) from None
    end = int(timezone.now().timestamp() * 1_000_000)
    found = TraceQuery(
        start=end - hours * 3_600_000_000,
        end=end,
        limit=50,
        service=form["service"],
        operation=form["operation"],
        tags=tuple(tags),
        words=tuple(words),
        min_duration=durations[0],
        max_duration=durations[1],
        error_only=form["error"] == "on",
    )
    return found, form


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    error, results = "", []
    try:
        found, form = _search_query(request.GET)
        results = selectors.search(found)
    except ValueError as exc:
        form, error = {key: request.GET.get(key, "") for key in request.GET}, str(exc)
    longest = max((r["duration"] for r in results), default=0) or 1
    palette = colors([name for r in results for name in r["services"]])
    for result in results:
        result["bar"] = max(0.5, result["duration"] * 100 / longest)
        result["when"] = when(result["start"])
        result["took"] = ms(result["duration"])
        result["service_colors"] = [
            (name, count, palette[name]) for name, count in result["services"].items()
        ]
    context = {
        "form": form,
        "error": error,
        "results": results,
        "services": selectors.service_names(),
        "lookbacks": LOOKBACKS,
        "searched": bool(request.GET),
    }
    return render(request, "trace_app/index.html", context)


def waterfall(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Each span's bar: offset and width in % of the trace, colour by service, indent by depth."""
    start, total = trace["start"], trace["duration"] or 1
    palette = colors([span["service"] for span in trace["spans"]])
    rows = []
    for span in trace["spans"]:
        rows.append(
            {
                **span,
                "left": round((span["timestamp"] - start) * 100 / total, 3),
                "width": round(max(span["duration"] * 100 / total, 0.3), 3),
                "color": ERROR_COLOR if span["error"] else palette[span["service"]],
                "service_color": palette[span["service"]],
                "indent": min(span["depth"], 30) * 14,
                "offset": ms(span["timestamp"] - start),
                "took": ms(span["duration"]),
                "skew_text": ms(abs(span["skew"])) if span["skew"] else "",
                "annotation_rows": [{**a, "at": ms(a["timestamp"] - start)} for a in span["annotations"]],
            }
        )
    return rows


@staff_required
def trace(request: HttpRequest, trace_id: str) -> HttpResponse:
    try:
        wanted = query.trace_id(trace_id)
    except PlatformError:
        raise Http404(trace_id) from None
    try:
        raw = flag(request.GET["raw"]) if "raw" in request.GET else False  # the API's spellings
    except ValueError as exc:
        raise BadRequest(f"raw: {exc}") from None
    found = selectors.trace(wanted, raw=raw)
    if found is None:
        raise Http404(trace_id)
    context = {
        "trace": found,
        "rows": waterfall(found),
        "raw": raw,
        "when": when(found["start"]),
        "took": ms(found["duration"]),
        "legend": colors(list(found["services"])).items(),
    }
    return render(request, "trace_app/trace.html", context)


def layout(graph: dict[str, Any]) -> dict[str, Any]:
    """Services placed in columns by how deep they sit in the call graph; edges as SVG lines."""
    names = [s["name"] for s in graph["services"]]
    callers: dict[str, set[str]] = {name: set() for name in names}
    for edge in graph["edges"]:
        if edge["parent"] != edge["child"]:
            callers[edge["child"]].add(edge["parent"])
    depth = {name: 0 for name in names}
    for _ in range(len(names)):  # longest path from a root; a cycle stops growing after n rounds
        changed = False
        for name in names:
            deepest = max((depth[c] + 1 for c in callers[name]), default=0)
            if deepest > depth[name] and deepest < len(names):
                depth[name], changed = deepest, True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for name in sorted(names):
        columns.setdefault(depth[name], []).append(name)
    place = {}
    for column, members in columns.items():
        for row, name in enumerate(members):
            place[name] = (20 + column * GRAPH_COLUMN, 20 + row * GRAPH_ROW)
    nodes = [
        {**s, "x": place[s["name"]][0], "y": place[s["name"]][1], "failing": s["errors_in"] > 0}
        for s in graph["services"]
    ]
    lines = []
    for edge in graph["edges"]:
        (x1, y1), (x2, y2) = place[edge["parent"]], place[edge["child"]]
        errors = f", {edge['errors']} err" if edge["errors"] else ""
        label = f"{edge['calls']} calls{errors} · p99 {edge['p99_ms']} ms"
        label_x, label_y = (x1 + NODE_W + x2) // 2, (y1 + y2) // 2 + NODE_H // 2 - 6
        # the label's box (about 6.2 px a character at 11 px), white under the text, so the
        # line, drawn first, never runs through it
        box_w = round(len(label) * 6.2) + 8
        lines.append(
            {
                **edge,
                "x1": x1 + NODE_W,
                "y1": y1 + NODE_H // 2,
                "x2": x2,
                "y2": y2 + NODE_H // 2,
                "label": label,
                "label_x": label_x,
                "label_y": label_y,
                "box": {"x": label_x - box_w // 2, "y": label_y - 11, "w": box_w, "h": 15},
                "color": ERROR_COLOR if edge["errors"] else "#4b6584",
            }
        )
    width = 40 + (max(columns, default=0) + 1) * GRAPH_COLUMN
    height = 40 + max((len(m) for m in columns.values()), default=1) * GRAPH_ROW
    return {
        "nodes": nodes,
        "lines": lines,
        "width": width,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }


@staff_required
def graph(request: HttpRequest) -> HttpResponse:
    asked = request.GET.get("hours", "1")
    known = asked.isascii() and asked.isdigit() and int(asked) in dict(LOOKBACKS)
    hours, error = (
        (int(asked), "") if known else (1, "Pick a time range from the list: the last hour is shown.")
    )
    until = timezone.now()
    since = until - timedelta(hours=hours)
    found = selectors.graph(int(since.timestamp() * 1e6), int(until.timestamp() * 1e6))
    context = {
        "graph": found,
        "drawing": layout(found),
        "hours": hours,
        "lookbacks": LOOKBACKS,
        "error": error,
    }
    return render(request, "trace_app/graph.html", context)


@staff_required
def compare(request: HttpRequest) -> HttpResponse:
    a, b = request.GET.get("a", "").strip(), request.GET.get("b", "").strip()
    context: dict[str, Any] = {"a": a, "b": b, "error": "", "result": None}
    if a and b:  # one id alone (the link from a trace) only fills in the form
        try:
            traces = [
                selectors.trace(query.trace_id(v, f"trace {side.upper()}"))
                for side, v in (("a", a), ("b", b))
            ]
            missing = [v for v, t in zip((a, b), traces, strict=True) if t is None]
            if missing:
                raise ValidationError(f"No trace {missing[0]}.")
            result = assembly.compare(*traces)
            for row in result["spans"]:
                row["a_took"], row["b_took"] = ms(row["a"]["duration"]), ms(row["b"]["duration"])
                sign = "+" if row["difference"] > 0 else "-" if row["difference"] < 0 else ""
                row["diff_text"] = sign + ms(abs(row["difference"]))
            result["a_took"], result["b_took"] = ms(result["a"]["duration"]), ms(result["b"]["duration"])
            context["result"] = result
        except PlatformError as exc:
            context["error"] = str(exc)
        except ValidationError as exc:
            context["error"] = exc.message
    return render(request, "trace_app/compare.html", context)
