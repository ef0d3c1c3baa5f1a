"""The router dashboard (being built)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from platformsite.web import staff_required


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "router_app/index.html", {})


@staff_required
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "router_app/index.html", {})
