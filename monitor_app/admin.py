"""Operator screens of the monitor service.

Checks, flips, alerts and stats are written by the reports, pings and the state loop, and
maintenance windows through the API or dashboard: here they are read. A check may be removed
(a node that died without saying so keeps failing until its checks go), through
``services.check_delete`` so that the service's health is recomputed. Ping keys are secrets and
have no screen.
"""

from __future__ import annotations

import time

from django.contrib import admin

from monitor_app import services
from monitor_app.models import Alert, Check, Flip, Maintenance, NodeStatus, Ping, ServiceHealth, StatSample
from platformsite.admin import DeletesThroughService, DependentsGoWithIt, ReadOnlyAdmin


@admin.register(ServiceHealth)
class ServiceHealthAdmin(ReadOnlyAdmin):
    list_display = ["name", "status", "passing", "nodes", "min_share", "alerting", "changed"]
    list_filter = ["status", "alerting"]
    search_fields = ["name"]


@admin.register(Check)
class CheckAdmin(DeletesThroughService, DependentsGoWithIt, ReadOnlyAdmin):
    """Its pings, flips and windows go with it."""

    deletable = True
    list_display = ["service", "node", "name", "kind", "status", "critical", "last_report", "changed"]
    list_filter = ["status", "kind", "critical", "flapping"]
    search_fields = ["service", "node", "name"]
    ordering = ["service", "node", "name"]

    def delete_one(self, request, check: Check) -> None:
        services.check_delete(check=check, now=time.time())


@admin.register(NodeStatus)
class NodeStatusAdmin(ReadOnlyAdmin):
    list_display = ["service", "node", "status", "interval", "reported"]
    list_filter = ["status"]
    search_fields = ["service", "node"]


@admin.register(Flip)
class FlipAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    list_display = ["at", "service", "node", "name", "old", "new", "reason", "alert", "suppressed"]
    list_filter = ["new", "reason"]
    search_fields = ["=service", "=node", "=name"]
    ordering = ["-id"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created", "type", "subject", "published_at"]
    list_filter = ["type"]
    search_fields = ["subject"]
    ordering = ["-created"]


@admin.register(Maintenance)
class MaintenanceAdmin(ReadOnlyAdmin):
    list_display = ["service", "check_ref", "starts", "ends", "reason", "created_by"]
    search_fields = ["service", "reason"]
    list_select_related = ["check_ref"]


@admin.register(Ping)
class PingAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    list_display = ["at", "check_ref", "kind", "exit_status", "duration", "remote_addr"]
    list_filter = ["kind"]
    list_select_related = ["check_ref"]
    ordering = ["-id"]


@admin.register(StatSample)
class StatSampleAdmin(ReadOnlyAdmin):
    show_full_result_count = False
    list_display = ["at", "service", "node", "resolution", "requests", "errors", "cpu", "memory"]
    list_filter = ["resolution"]
    search_fields = ["=service", "=node"]
    ordering = ["-at"]
