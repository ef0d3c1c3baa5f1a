"""Operator screens of the events service: events, subscriptions, deliveries (redeliver dead letters)."""

from __future__ import annotations

from django.contrib import admin, messages

from event_app import services
from event_app.models import Delivery, Event, EventCount, Subscription
from platformsite.admin import ReadOnlyAdmin


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "source", "subject", "time", "root_id"]
    list_filter = ["type"]
    search_fields = ["=event_id", "=root_id", "^type", "^subject", "=source"]
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["name", "sink", "url", "is_active", "types", "owner", "created"]
    list_filter = ["sink", "is_active"]
    search_fields = ["name", "url"]
    exclude = ["secret"]


@admin.action(description="Redeliver the selected dead letters")
def redeliver(modeladmin, request, queryset) -> None:
    count = services.deliveries_redeliver(delivery_ids=queryset.values_list("pk", flat=True))
    modeladmin.message_user(request, f"{count} dead letter(s) queued again.", messages.SUCCESS)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
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


@admin.register(EventCount)
class EventCountAdmin(ReadOnlyAdmin):
    """The counters behind the events chart, derived from events: to look at, not to edit."""

    list_display = ["interval", "dimension", "key", "bucket", "shard", "count"]
    list_filter = ["interval", "dimension"]
