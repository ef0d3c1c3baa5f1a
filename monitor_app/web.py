"""The monitor dashboard: service cards by health, a service's nodes and checks, its flips,
uptime bars and charts of its stats, live over ``/ws/monitor/``."""

from __future__ import annotations

import time
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from monitor_app import selectors
from monitor_app.models import Flip, ServiceHealth
from monitor_app.services import history
from monitor_app.services.alerts import flip_data
from monitor_app.services.names import SERVICE_NAME
from platformsite.web import staff_required

MAX_SERVICES = 500
RECENT_FLIPS = 30
CHART_WIDTH, CHART_HEIGHT = 600, 120


def fleet(limit: int = MAX_SERVICES) -> list[dict[str, Any]]:
    names = list(ServiceHealth.objects.order_by("name").values_list("name", flat=True)[:limit])
    return selectors.services_overview(names)


def recent_flips(service: str | None = None, limit: int = RECENT_FLIPS) -> list[dict[str, Any]]:
    flips = Flip.objects.all() if service is None else Flip.objects.filter(service=service)
    return [flip_data(flip) for flip in flips.order_by("-id")[:limit]]


def home_context() -> dict[str, Any]:
    """The fleet at a glance on the platform's home page (``/ui/``)."""
    return {"services": fleet(), "flips": recent_flips(limit=10)}


def _page(request: HttpRequest, template: str, fragment: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, fragment if request.GET.get("fragment") == "1" else template, context)


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    context = {"services": fleet(), "flips": recent_flips()}
    return _page(request, "monitor_app/index.html", "monitor_app/_fleet.html", context)


def chart(points: list[dict[str, Any]], key: str, scale: float = 1.0) -> dict[str, Any] | None:
    """An SVG polyline of one series (the nodes summed per time), or None without data."""
    sums: dict[str, float] = {}
    for point in points:
        if point[key] is not None:
            sums[point["at"]] = sums.get(point["at"], 0.0) + point[key] / scale
    if len(sums) < 2:
        return None
    values = list(sums.values())
    top = max(values)
    scale_top = top or 1.0  # an all-zero series is drawn at the bottom, and its max says 0
    step = CHART_WIDTH / (len(values) - 1)
    line = " ".join(
        f"{i * step:.1f},{CHART_HEIGHT - v / scale_top * (CHART_HEIGHT - 10):.1f}"
        for i, v in enumerate(values)
    )
    return {"points": line, "max": round(top, 2), "last": round(values[-1], 2)}


@staff_required
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    if not SERVICE_NAME.matches(name):
        raise Http404(name)
    detail = selectors.service_detail(name)
    if detail is None:
        raise Http404(name)
    now = time.time()
    for member in detail["members"]:
        for check in member["checks"]:
            check["age"] = _age(check["last_report"], now)
    for job in detail["jobs"]:
        job["age"] = _age(job["last_report"], now)
    now_dt = timezone.now()
    series = selectors.stats_series(
        service=name, node=None, since=now_dt - timezone.timedelta(hours=1), until=now_dt
    )
    charts = [
        (label, chart(series["points"], key, scale))
        for label, key, scale in (
            ("CPU %", "cpu", 1.0),
            ("Memory (MiB)", "memory", 1048576.0),
            ("Requests/s", "request_rate", 1.0),
            ("Errors/s", "error_rate", 1.0),
        )
    ]
    context = {
        "service": detail,
        "flips": recent_flips(name),
        "uptime": history.service_uptime(name, now=now_dt, months=3),
        "charts": [(label, drawn) for label, drawn in charts if drawn is not None],
        "chart_size": (CHART_WIDTH, CHART_HEIGHT),
        "maintenance": selectors.maintenance_active(name, now=now_dt),
    }
    return _page(request, "monitor_app/service.html", "monitor_app/_service.html", context)


def _age(stamp: str | None, now: float) -> int | None:
    if not stamp:
        return None
    from datetime import datetime

    return max(0, round(now - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()))
