"""The platform's services: one Django app each, named alike in URLs, scopes, CLI and runservice."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.apps import apps
from django.conf import settings

VERSION = "0.1.0"


@dataclass(frozen=True)
class PlatformService:
    name: str
    app_label: str
    description: str

    @property
    def api_urls(self) -> str:
        return f"{self.app_label}.api.urls"


@cache
def all_services() -> tuple[PlatformService, ...]:
    found = {
        config.service: PlatformService(config.service, config.label, str(config.verbose_name))
        for config in apps.get_app_configs()
        if getattr(config, "service", None)
    }
    return tuple(found[name] for name in settings.PLATFORM_SERVICES)


def service_by_name(name: str) -> PlatformService:
    for service in all_services():
        if service.name == name:
            return service
    raise LookupError(f"No platform service named {name!r}")


def served_services() -> tuple[PlatformService, ...]:
    """The services this process serves: all of them, or one under ``runservice``."""
    if settings.PLATFORM_SERVICE:
        return (service_by_name(settings.PLATFORM_SERVICE),)
    return all_services()
