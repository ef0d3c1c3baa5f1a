"""Operator screens of the trace service: keep rules (edit), spans and the graph (read only)."""

from __future__ import annotations

from django.contrib import admin

from platformsite.admin import ReadOnlyAdmin
from trace_app.models import Edge, KeepRule, Span


@admin.register(KeepRule)
class KeepRuleAdmin(admin.ModelAdmin):
    list_display = ["service", "keep_errors", "slower_than_ms", "keep_share", "retention_days", "updated"]
    search_fields = ["service"]


@admin.register(Span)
class SpanAdmin(ReadOnlyAdmin):
    deletable = True
    show_full_result_count = False
    list_display = ["trace_id", "span_id", "service", "name", "kind", "duration", "error", "timestamp"]
    list_filter = ["kind", "error"]
    search_fields = ["=trace_id", "=span_id", "=service", "^name"]
    ordering = ["-timestamp"]


@admin.register(Edge)
class EdgeAdmin(ReadOnlyAdmin):
    deletable = True
    show_full_result_count = False
    list_display = ["minute", "parent", "child", "bucket", "calls", "errors"]
    search_fields = ["=parent", "=child"]
    ordering = ["-minute"]
