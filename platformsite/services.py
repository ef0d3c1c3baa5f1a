"""The platform's services, each declared once, on its app's ``AppConfig``.

A service is a Django app whose ``AppConfig`` derives from :class:`ServiceConfig` and says what
the service is: its name (used alike in ``/api/v1/<name>/``, ``/ws/<name>/``, ``/ui/<name>/``,
the ``<name>:read`` and ``<name>:write`` scopes, ``runservice <name>`` and ``platform <name>``),
which modules hold its API, dashboard, websocket and hot routes, the paths allowed the ingest
body limit, paths outside ``/api/v1/<name>/`` it serves, and its periodic tasks.  The site
(URLs, websocket routing, scopes, the hot path, ``runservice``, the home page and the service
indexes) is built by reading these declarations, so adding a service is its app plus one line
in ``INSTALLED_APPS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from types import ModuleType
from typing import Any, ClassVar

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = "0.1.0"
#: Scopes that belong to no single service.
PLATFORM_SCOPES = {"admin": "Everything, on every service"}


class ServiceConfig(AppConfig):
    """The ``AppConfig`` of a platform service: everything the site needs to know about it.

    An app subclasses it as ``services.ServiceConfig`` (the module, not the class, imported into
    its ``apps.py``, so Django finds one AppConfig there).  Module names are relative to the app
    (``"api.urls"`` is ``<app>.api.urls``); None means the service has no such part.
    """

    #: The service's name in URLs, scopes, the CLI and runservice.
    service: ClassVar[str] = ""
    #: False while only a placeholder: the site marks it "not built yet" and serves no API for it.
    built: ClassVar[bool] = True
    #: Scopes beyond ``<name>:read`` and ``<name>:write``, with what each grants.
    extra_scopes: ClassVar[dict[str, str]] = {}
    #: ``urlpatterns`` under ``/api/v1/<name>/`` (the index ``ServiceRootView`` lists them).
    api_urls: ClassVar[str | None] = "api.urls"
    #: ``urlpatterns`` of the dashboard under ``/ui/<name>/`` (else a generic service page).
    web_urls: ClassVar[str | None] = None
    #: ``websocket_urlpatterns`` (each under ``ws/<name>/``).
    websocket_routes: ClassVar[str | None] = None
    #: ``ROUTES``: the calls :mod:`platformsite.hotpath` may answer beneath Django.
    hot_routes: ClassVar[str | None] = None
    #: ``urlpatterns`` mounted at the site's root, for contracts outside ``/api/v1/<name>/``
    #: (tracing's ``/v1/traces`` and ``/api/v2/``).
    root_urls: ClassVar[str | None] = None
    #: Path prefixes whose requests may carry up to ``PLATFORM_INGEST_MAX_BODY_BYTES``.
    ingest_paths: ClassVar[tuple[str, ...]] = ()
    #: Celery beat entries (``CELERY_BEAT_SCHEDULE`` items) of the service's periodic tasks.
    beat_schedule: ClassVar[dict[str, dict[str, Any]]] = {}

    def submodule(self, relative: str | None) -> ModuleType | None:
        return import_module(f"{self.name}.{relative}") if relative else None


@dataclass(frozen=True)
class PlatformService:
    """One service as the site sees it (read from its :class:`ServiceConfig`)."""

    name: str
    app_label: str
    description: str
    built: bool = True
    config: ServiceConfig | None = field(default=None, compare=False, repr=False)

    @property
    def api_urls(self) -> str:
        return f"{self.config.name}.{self.config.api_urls}"

    @property
    def scopes(self) -> dict[str, str]:
        return {
            f"{self.name}:read": f"Read access to {self.name}",
            f"{self.name}:write": f"Write access to {self.name}",
            **self.config.extra_scopes,
        }

    @property
    def websocket_path(self) -> str | None:
        """``/ws/<name>/`` if the service serves websockets, else None."""
        return f"/ws/{self.name}/" if self.config.websocket_routes else None

    def part(self, attribute: str) -> ModuleType | None:
        """The module a declaration names (``"web_urls"``, ``"hot_routes"``...), or None."""
        return self.config.submodule(getattr(self.config, attribute))


@cache
def all_services() -> tuple[PlatformService, ...]:
    """Every declared service, in ``INSTALLED_APPS`` order."""
    return tuple(
        PlatformService(config.service, config.label, str(config.verbose_name), config.built, config)
        for config in apps.get_app_configs()
        if isinstance(config, ServiceConfig)
    )


def service_by_name(name: str) -> PlatformService:
    for service in all_services():
        if service.name == name:
            return service
    raise LookupError(f"No platform service named {name!r}")


@cache
def service_names() -> tuple[str, ...]:
    return tuple(service.name for service in all_services())


def served_services() -> tuple[PlatformService, ...]:
    """The services this process serves: all of them, or one under ``runservice``."""
    if settings.PLATFORM_SERVICE:
        try:
            return (service_by_name(settings.PLATFORM_SERVICE),)
        except LookupError:
            raise ImproperlyConfigured(
                f"PLATFORM_SERVICE must be one of: {', '.join(service_names())}"
            ) from None
    return all_services()


def all_scopes() -> dict[str, str]:
    """Every scope a token may hold: each service's, and ``admin``."""
    scopes = dict(PLATFORM_SCOPES)
    for service in all_services():
        scopes.update(service.scopes)
    return scopes


@cache
def ingest_paths() -> tuple[str, ...]:
    """The path prefixes allowed ``PLATFORM_INGEST_MAX_BODY_BYTES``."""
    return tuple(path for service in all_services() for path in service.config.ingest_paths)


def hot_routes() -> list[Any]:
    """The hot routes of the services this process serves."""
    modules = [service.part("hot_routes") for service in served_services()]
    return [route for module in modules if module is not None for route in module.ROUTES]


def beat_schedule() -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    for service in all_services():
        schedule.update(service.config.beat_schedule)
    return schedule
