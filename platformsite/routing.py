"""Websocket routes, assembled from each served service's declared ``websocket_routes``."""

from __future__ import annotations

from platformsite.services import served_services


def websocket_urlpatterns() -> list:
    patterns: list = []
    for service in served_services():
        if (module := service.part("websocket_routes")) is not None:
            patterns += module.websocket_urlpatterns
    return patterns
