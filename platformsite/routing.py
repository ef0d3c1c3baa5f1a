"""Websocket routes, assembled from each served service's ``routing.py``."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from platformsite.services import served_services


def websocket_urlpatterns() -> list:
    patterns: list = []
    for service in served_services():
        module = f"{service.app_label}.routing"
        if find_spec(module) is not None:
            patterns += import_module(module).websocket_urlpatterns
    return patterns
