"""Operator screens of the router service.

Statistics, node states and decisions are written by the evaluations: here they are only read.
Labels, rules, rate limits and policies are changed on the dashboard or through the API, whose
writes check conflicts and tell callers (the admin would skip both), so they are read-only too.
"""

from __future__ import annotations

from django.contrib import admin

from platformsite.admin import ReadOnlyAdmin
from router_app.models import Label, NodeState, OutlierEvent, Policy, RateLimit, Rule, StatsWindow


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ["service", "enforce", "interval", "evaluated", "revision"]
    search_fields = ["service"]


@admin.register(NodeState)
class NodeStateAdmin(ReadOnlyAdmin):
    list_display = ["service", "node", "version", "weight", "ejected", "success_rate", "updated"]
    list_filter = ["ejected"]
    search_fields = ["service", "node"]


@admin.register(OutlierEvent)
class OutlierEventAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "service", "node", "action", "type", "enforced", "num_ejections"]
    list_filter = ["action", "type", "enforced"]
    search_fields = ["service", "node"]


@admin.register(StatsWindow)
class StatsWindowAdmin(ReadOnlyAdmin):
    list_display = ["start", "caller", "service", "node", "endpoint", "requests", "successes"]
    search_fields = ["service", "node", "caller"]


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = ["service", "version", "key", "value", "weight", "priority"]
    search_fields = ["service"]


@admin.register(Rule)
class RuleAdmin(ReadOnlyAdmin):
    list_display = ["service", "version", "key", "value", "weight", "priority"]
    search_fields = ["service"]


@admin.register(RateLimit)
class RateLimitAdmin(ReadOnlyAdmin):
    list_display = ["service", "caller", "rate", "burst"]
    search_fields = ["service", "caller"]
