"""Operator screens of the trace service: keep rules (edit), spans and the graph (read only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction

from platformsite.admin import DeletesThroughService, PlatformAdmin, ReadOnlyAdmin
from platformsite.api.errors import Invalid
from trace_app.api.serializers import KeepRuleSerializer
from trace_app.models import Edge, KeepRule, Span
from trace_app.services import keeping


class KeepRuleForm(forms.ModelForm):
    """Checked as ``PUT /api/v1/trace/rules/<service>/`` checks a rule (its serializer): a share of
    0 to 1, at least one day of retention (0 days would expire every span of the service, or of
    all, at the next run), a service name a search can use."""

    class Meta:
        model = KeepRule
        fields = ["service", "keep_errors", "slower_than_ms", "keep_share", "retention_days"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        checked = KeepRuleSerializer(data=data)
        try:
            errors = {} if checked.is_valid() else checked.errors
        except Invalid as exc:  # the service name's check answers a 400 of its own
            errors = {"service": [str(exc)]}
        for field, messages in errors.items():
            self.add_error(field if field in self.fields else None, [str(message) for message in messages])
        return data


@admin.register(KeepRule)
class KeepRuleAdmin(DeletesThroughService, PlatformAdmin):
    form = KeepRuleForm

    def save_model(self, request, rule, form, change) -> None:
        super().save_model(request, rule, form, change)
        transaction.on_commit(keeping.forget_rules)  # applies at once, as the API's PUT

    def delete_one(self, request, rule) -> None:
        keeping.keep_rule_delete(service=rule.service)

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
