"""Operator screens of the trace service: keep rules (edit), spans and the graph (read only)."""

from __future__ import annotations

from django.contrib import admin

from trace_app.models import Edge, KeepRule, Span


@admin.register(KeepRule)
class KeepRuleAdmin(admin.ModelAdmin):
    list_display = ["service", "keep_errors", "slower_than_ms", "keep_share", "retention_days", "updated"]
    search_fields = ["service"]


class ReadOnly(admin.ModelAdmin):
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Span)
class SpanAdmin(ReadOnly):
    list_display = ["trace_id", "span_id", "service", "name", "kind", "duration", "error", "timestamp"]
    list_filter = ["kind", "error"]
    search_fields = ["=trace_id", "=span_id", "=service", "^name"]
    ordering = ["-timestamp"]


@admin.register(Edge)
class EdgeAdmin(ReadOnly):
    list_display = ["minute", "parent", "child", "bucket", "calls", "errors"]
    search_fields = ["=parent", "=child"]
    ordering = ["-minute"]
