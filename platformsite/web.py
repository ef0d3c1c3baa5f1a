"""The dashboards shell: staff login, the index and one page per service."""

from __future__ import annotations

from contextlib import suppress
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from platformsite.ops import CHECKS
from platformsite.services import VERSION, all_scopes, served_services, service_by_name

staff_required = staff_member_required(login_url="ui:login")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: the services to link to from every dashboard page.

    The built services come first; those not built yet follow under a "not built yet" label.
    ``nav_section`` is the service whose pages are shown (``/ui/<name>/...``), highlighted in the
    navigation on its sub-pages too.
    """
    if not request.path.startswith("/ui/"):
        return {}
    services = served_services()
    return {
        "nav_services": services,
        "nav_built": [service for service in services if service.built],
        "nav_not_built": [service for service in services if not service.built],
        "nav_section": request.path.split("/")[2],
        "platform_version": VERSION,
    }


@staff_required
def index(request: HttpRequest) -> HttpResponse:
    checks = []
    for name, check in CHECKS.items():
        try:
            check()
            checks.append({"name": name, "ok": True, "error": ""})
        except Exception as exc:
            checks.append({"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]})
    context = {
        "checks": checks,
        "mode": "distributed" if settings.REDIS_URL else "embedded",
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "task_mode": settings.PLATFORM_TASK_MODE,
        "services": served_services(),
        "fleet": _fleet(),
    }
    return render(request, "platformsite/index.html", context)


def _fleet() -> dict[str, Any] | None:
    """The monitor's fleet at a glance (its ``web.home_context()``), when the monitor is served
    and built; else None."""
    for service in served_services():
        if service.name == "monitor" and service.built:
            return import_module(f"{service.config.name}.web").home_context()
    return None


@staff_required
def service_page(request: HttpRequest, name: str) -> HttpResponse:
    try:
        service = service_by_name(name)
    except LookupError as exc:
        raise Http404(name) from exc
    if service not in served_services():
        raise Http404(name)
    admin_url = None  # where an operator who may manages its records (auth's accounts, roles, rules)
    if request.user.has_module_perms(service.config.label):
        with suppress(NoReverseMatch):  # none when no model of it is in the admin
            admin_url = reverse("admin:app_list", kwargs={"app_label": service.config.label})
    context = {
        "service": service,
        "api_root": reverse(f"{service.name}:root"),
        "scopes": [scope for scope in all_scopes() if scope.startswith(f"{service.name}:")],
        "admin_url": admin_url,
    }
    return render(request, "platformsite/service.html", context)
