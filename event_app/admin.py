"""Operator screens of the events service: events, subscriptions, deliveries (redeliver dead letters)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError

from event_app import services
from event_app.api.serializers import SubscriptionUpdateInput
from event_app.models import Delivery, Event, EventCount, Subscription
from event_app.services.subscriptions import check_sink
from platformsite.admin import DeletesThroughService, DependentsGoWithIt, PlatformAdmin, ReadOnlyAdmin
from platformsite.jsonvalues import unstorable


@admin.register(Event)
class EventAdmin(PlatformAdmin):
    list_display = ["id", "type", "source", "subject", "time", "root_id"]
    list_filter = ["type"]
    search_fields = ["=event_id", "=root_id", "^type", "^subject", "=source"]
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # events go through retention only, which keeps the chart's EventCount in step


def _filter_values(name: str, value: object) -> list[str]:
    """``types`` or ``sources`` checked by the API's own field (a list of strings, as many and as
    long as it takes): every published event is matched against them."""
    try:
        values = SubscriptionUpdateInput().fields[name].run_validation([] if value is None else value)
    except DRFValidationError as exc:
        detail = exc.detail
        while isinstance(detail, dict | list) and detail:  # the first message, however nested
            detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
        raise ValidationError(f'{detail} A JSON list of strings, e.g. ["order.*"] ([] for all).') from None
    if problem := unstorable(values, max_depth=2):
        raise ValidationError(problem)
    return values


class SubscriptionForm(forms.ModelForm):
    """The checks of the subscriptions API: filters as lists of strings, a webhook URL that can be
    delivered to (http or https, no loopback or private address unless allowed)."""

    class Meta:
        model = Subscription
        fields = ["name", "owner", "types", "sources", "subject_prefix", "sink", "url", "is_active"]

    def clean_types(self) -> list[str]:
        return _filter_values("types", self.cleaned_data.get("types"))

    def clean_sources(self) -> list[str]:
        return _filter_values("sources", self.cleaned_data.get("sources"))

    def clean(self) -> dict:
        data = super().clean()
        if "sink" in data and "url" in data:
            try:
                check_sink(data["sink"], data["url"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field, errors)
        return data


@admin.register(Subscription)
class SubscriptionAdmin(DeletesThroughService, DependentsGoWithIt, PlatformAdmin):
    """Its deliveries go with it (they are not deleted on their own here)."""

    form = SubscriptionForm
    list_display = ["name", "sink", "url", "is_active", "types", "owner", "created"]
    list_filter = ["sink", "is_active"]
    search_fields = ["name", "url"]

    def save_model(self, request, subscription, form, change) -> None:
        made = subscription.sink == Subscription.Sink.WEBHOOK and not subscription.secret
        if made:
            subscription.secret = services.new_secret()  # as the API does: deliveries are signed
        # saved through the service: the sink checked, the cached filters dropped, an active
        # webhook's backlog sent at once
        services.subscription_update(subscription=subscription)
        if made:  # as the API's answer carries it, once: the receiver verifies signatures with it
            self.message_user(
                request,
                f"Signing secret of {subscription.name} (shown once): {subscription.secret}",
                messages.WARNING,
            )

    def delete_one(self, request, subscription) -> None:
        services.subscription_delete(subscription=subscription)


@admin.action(description="Redeliver the selected dead letters")
def redeliver(modeladmin, request, queryset) -> None:
    count = services.deliveries_redeliver(delivery_ids=queryset.values_list("pk", flat=True))
    modeladmin.message_user(request, f"{count} dead letter(s) queued again.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(PlatformAdmin):
    list_display = [
        "id",
        "subscription",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
    ]
    list_filter = ["status", "subscription"]
    list_select_related = ["subscription", "event"]
    raw_id_fields = ["event"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = [redeliver]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deliveries go with their event (retention) or their subscription


@admin.register(EventCount)
class EventCountAdmin(ReadOnlyAdmin):
    """The counters behind the events chart, derived from events: to look at, not to edit."""

    list_display = ["interval", "dimension", "key", "bucket", "shard", "count"]
    list_filter = ["interval", "dimension"]
