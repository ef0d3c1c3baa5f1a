"""Websocket routes, assembled from each served service's declared ``websocket_routes``."""

from __future__ import annotations

from django.urls import re_path

from platformsite.consumers import NoSuchSocket
from platformsite.services import served_services


def websocket_urlpatterns() -> list:
    """Every served service's websocket routes, then a refusal for any other path."""
    patterns: list = []
    for service in served_services():
        if (module := service.part("websocket_routes")) is not None:
            patterns += module.websocket_urlpatterns
    return [*patterns, re_path(r"", NoSuchSocket.as_asgi())]
