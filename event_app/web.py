"""Dashboard pages of the events service: live tail, search, event detail, counts chart."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from event_app import selectors
from event_app.models import Event
from platform_client.server_span import traceparent_ids
from platformsite.web import staff_required

PAGE = 50
CHART_WIDTH, CHART_HEIGHT, CHART_SERIES = 720, 180, 6
COLORS = ["#3867d6", "#20bf6b", "#fa8231", "#eb3b5a", "#8854d0", "#0fb9b1"]
SEARCH_FIELDS = ("type", "source", "subject", "root_id", "from", "to")
#: Each search field's label and hint (placeholders read as examples, never as values).
SEARCH_LABELS = {
    "type": ("Type", "e.g. order.* or order.created"),
    "source": ("Source", "e.g. /shop"),
    "subject": ("Subject", "e.g. orders/7, or orders/* by prefix"),
    "root_id": ("Root id", "the id of a flow's first event"),
    "from": ("From (UTC)", "e.g. 2026-01-31T12:00:00Z"),
    "to": ("To (UTC, excluded)", "e.g. 2026-01-31T13:00:00Z"),
}


def chart(hours: int = 1) -> dict[str, Any]:
    """Counts per type per minute over the last ``hours``, as SVG polylines (top types only).

    The last minute is the current one, still counting: each line's last segment is apart
    (``current``, drawn dashed) so a minute half-counted does not read as a fall."""
    until = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = until - timedelta(hours=hours)
    summary = selectors.event_summary(since=since, until=until, group_by="type", interval="minute")
    series = summary["series"][:CHART_SERIES]
    minutes = hours * 60
    peak = max((n for s in series for _, n in s["points"]), default=0) or 1
    lines = []
    for color, item in zip(COLORS, series, strict=False):
        counts = {bucket: n for bucket, n in item["points"]}
        points = []
        for i in range(minutes):
            bucket = (since + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
            x = round(i * CHART_WIDTH / max(1, minutes - 1), 1)
            y = round(CHART_HEIGHT - counts.get(bucket, 0) * (CHART_HEIGHT - 10) / peak, 1)
            points.append(f"{x},{y}")
        lines.append(
            {
                "key": item["key"],
                "total": item["total"],
                "color": color,
                "points": " ".join(points[:-1]),
                "current": " ".join(points[-2:]),
            }
        )
    return {
        "lines": lines,
        "peak": peak,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "hours": hours,
        "since": since,  # the first point's minute, at the left edge
        "last": until - timedelta(minutes=1),  # the right edge's: the current minute
    }


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    query = {name: request.GET.get(name, "") for name in SEARCH_FIELDS}
    before = request.GET.get("before", "")
    error = ""
    events: list[Event] = []
    try:
        params = {k: v for k, v in {**query, "before": before}.items() if v}
        events = list(selectors.event_search(params).order_by("-id")[: PAGE + 1])
    except ValidationError as exc:
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    more = len(events) > PAGE  # keyset pages: older ones are those below the last id shown
    events = events[:PAGE]
    search = {k: v for k, v in query.items() if v}
    pages = {
        "more": more,
        "before": before,
        "older": "?" + urlencode({**search, "before": events[-1].pk}) if more else "",
        "newest": ("?" + urlencode(search) if search else "?") if before else "",
    }
    fields = [
        {"name": name, "label": SEARCH_LABELS[name][0], "hint": SEARCH_LABELS[name][1], "value": value}
        for name, value in query.items()
    ]
    context = {
        "query": query,
        "fields": fields,
        "events": events,
        "pages": pages,
        "error": error,
        "chart": chart(),
    }
    return render(request, "event_app/index.html", context)


def trace_link(traceparent: str) -> str:
    """The trace page of an event's ``traceparent``; "" when it is not one or no trace pages are served."""
    ids = traceparent_ids(traceparent)
    if ids is None:
        return ""
    try:
        return reverse("ui:trace:trace", args=[ids[0]])
    except NoReverseMatch:  # the trace service is served elsewhere
        return ""


@staff_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=pk)
    context = {
        "event": event,
        "trace_link": trace_link(event.traceparent),
        "data_json": json.dumps(event.data, indent=2, ensure_ascii=False) if event.data is not None else "",
        "related": selectors.related_events(event),
        "deliveries": list(selectors.deliveries(event_id=event.pk).order_by("id")[:100]),
    }
    return render(request, "event_app/detail.html", context)
