"""Operator screens of the discovery service.

Nodes are registered by services themselves; here an operator looks and removes.  Removal goes
through ``services.node_deregister`` so watchers, caches and the event stream hear about it.
"""

from __future__ import annotations

from django.contrib import admin

from discovery_app import services
from discovery_app.models import Node, Result, Service, ServiceIndex
from platformsite.admin import DeletesThroughService, ReadOnlyAdmin


@admin.register(Service)
class ServiceAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "updated"]
    search_fields = ["name"]


@admin.register(Node)
class NodeAdmin(DeletesThroughService, ReadOnlyAdmin):
    deletable = True
    list_display = ["id", "service", "address", "port", "status", "last_heartbeat"]
    list_filter = ["status"]
    search_fields = ["id", "service__name", "address"]
    list_select_related = ["service"]

    def delete_one(self, request, node: Node) -> None:
        services.node_deregister(node_id=node.id, reason="admin")


@admin.register(ServiceIndex)
class ServiceIndexAdmin(ReadOnlyAdmin):
    list_display = ["name", "index"]
    search_fields = ["name"]


@admin.register(Result)
class ResultAdmin(ReadOnlyAdmin):
    deletable = True
    list_display = ["service", "index", "action", "node_id", "reason", "timestamp"]
    list_filter = ["action"]
    search_fields = ["service", "node_id"]
