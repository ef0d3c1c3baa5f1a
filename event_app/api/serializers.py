"""Input and output shapes of the events API (events themselves: event_app.representation)."""

from __future__ import annotations

from rest_framework import serializers

from event_app.filters import MAX_VALUES
from event_app.models import Delivery, EventCount, Subscription
from platformsite.api.validators import StrictBooleanField, StrictIntegerField


class SummaryQuery(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=EventCount.Dimension.choices, default="type")
    interval = serializers.ChoiceField(choices=EventCount.Interval.choices, default="minute")
    # ``from`` is a Python keyword: the field is declared under its name in the class namespace.
    locals()["from"] = serializers.DateTimeField(
        required=False, help_text="RFC 3339 (default: an hour before to)."
    )
    to = serializers.DateTimeField(required=False, help_text="RFC 3339 (default: now).")


class SubscriptionInput(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    types = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list, max_length=MAX_VALUES
    )
    sources = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list, max_length=MAX_VALUES
    )
    subject_prefix = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    sink = serializers.ChoiceField(choices=Subscription.Sink.choices, default=Subscription.Sink.WEBHOOK)
    url = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    secret = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class SubscriptionUpdateInput(serializers.Serializer):
    types = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=MAX_VALUES
    )
    sources = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=MAX_VALUES
    )
    subject_prefix = serializers.CharField(max_length=500, required=False, allow_blank=True)
    url = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    secret = serializers.CharField(max_length=200, required=False, allow_blank=False)
    is_active = StrictBooleanField(required=False)


class SubscriptionOutput(serializers.ModelSerializer):
    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "owner",
            "types",
            "sources",
            "subject_prefix",
            "sink",
            "url",
            "is_active",
            "created",
            "updated",
        ]


class DeliveryOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.name")
    event_type = serializers.CharField(source="event.type")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "subscription",
            "event",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created",
        ]


class RedeliverInput(serializers.Serializer):
    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=2**63 - 1), required=False, default=list
    )
    all_dead = StrictBooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        if not attrs["ids"] and not attrs["all_dead"]:  # an empty body requeued nothing, and said 0
            message = 'Name the dead deliveries, or send {"all_dead": true}.'
            raise serializers.ValidationError({"ids": [message]})
        return attrs


class EventOutput(serializers.Serializer):
    """An event as the platform stores it (``event_app.representation.event_dict``)."""

    id = serializers.IntegerField(help_text="The platform's sequence number.")
    event_id = serializers.CharField(help_text="The producer's id (CloudEvents ``id``).")
    source = serializers.CharField()
    type = serializers.CharField()
    specversion = serializers.CharField()
    time = serializers.CharField(help_text="RFC 3339, UTC.")
    subject = serializers.CharField(allow_null=True, allow_blank=True)
    datacontenttype = serializers.CharField(allow_null=True, allow_blank=True)
    dataschema = serializers.CharField(allow_null=True, allow_blank=True)
    data = serializers.JSONField(allow_null=True)
    data_base64 = serializers.CharField(allow_null=True, allow_blank=True)
    extensions = serializers.DictField()
    root_id = serializers.CharField(allow_null=True, allow_blank=True)
    traceparent = serializers.CharField(allow_null=True, allow_blank=True)
    received = serializers.CharField(help_text="RFC 3339, UTC.")


class EventDetailOutput(EventOutput):
    related = EventOutput(many=True, help_text="Events sharing its root_id.")


class PublishedEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    source = serializers.CharField()
    duplicate = serializers.BooleanField()


class PublishedOutput(serializers.Serializer):
    """A publish's answer (201 if any event was new, 200 if all were duplicates)."""

    count = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    events = PublishedEventOutput(many=True)


class RequeuedOutput(serializers.Serializer):
    requeued = serializers.IntegerField()


class SummarySeriesOutput(serializers.Serializer):
    key = serializers.CharField(help_text="The type, source or subject counted.")
    total = serializers.IntegerField()
    points = serializers.ListField(
        child=serializers.ListField(), help_text="[bucket start (RFC 3339), count] pairs, oldest first."
    )


class SummaryOutput(serializers.Serializer):
    group_by = serializers.CharField()
    interval = serializers.CharField()
    series = SummarySeriesOutput(many=True)
    to = serializers.DateTimeField()


# ``from`` is a Python keyword: declared under its name.
SummaryOutput._declared_fields["from"] = serializers.DateTimeField()
