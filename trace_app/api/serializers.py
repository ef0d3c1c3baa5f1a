"""Input and output shapes of the trace service's native API (``/api/v1/trace/``)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from platformsite.api.validators import Name, StrictBooleanField, StrictFloatField, StrictIntegerField
from trace_app.models import KeepRule
from trace_app.query import MAX_TERMS

#: A keep rule's service: any name a span's service can be (ingest keeps every character but NUL,
#: cut at 128), '/' included (its URL's ``<path:service>`` takes it), but a line break, which no
#: URL path matches.
SERVICE_NAME = Name(
    r"\*|[^\x00\n\ud800-\udfff]{1,128}",
    "a service name (1-128 characters, any but NUL or a line break), or * for the default",
)


class SearchSerializer(serializers.Serializer):
    service = serializers.CharField(required=False, max_length=128)
    remote_service = serializers.CharField(required=False, max_length=128)
    operation = serializers.CharField(required=False, max_length=255)
    tag = serializers.ListField(
        child=serializers.RegexField(r"^[^=]+=.*$", max_length=600),
        required=False,
        max_length=MAX_TERMS,
        help_text=f"k=v, repeatable (at most {MAX_TERMS})",
    )
    word = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        max_length=MAX_TERMS,
        help_text=f"A tag key or annotation, repeatable (at most {MAX_TERMS}).",
    )
    min_duration_ms = serializers.FloatField(required=False, min_value=0)
    max_duration_ms = serializers.FloatField(required=False, min_value=0)
    error = serializers.BooleanField(required=False, default=False, help_text="Only traces with an error.")
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(required=False, min_value=1, default=20)

    def validate_limit(self, value: int) -> int:
        return min(value, settings.TRACE_SEARCH_MAX)

    def validate(self, attrs: dict) -> dict:
        low, high = attrs.get("min_duration_ms"), attrs.get("max_duration_ms")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"max_duration_ms": "is less than min_duration_ms"})
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "is before since"})
        return attrs


class SummarySerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    root_service = serializers.CharField()
    root_name = serializers.CharField()
    start = serializers.IntegerField(help_text="µs since the epoch")
    duration = serializers.IntegerField(help_text="µs")
    span_count = serializers.IntegerField()
    services = serializers.DictField(child=serializers.IntegerField(), help_text="spans per service")
    error = serializers.BooleanField()


class SearchResultSerializer(serializers.Serializer):
    traces = SummarySerializer(many=True)


class KindField(serializers.CharField):
    """A span kind as the services list names it: an internal span (stored as "") is INTERNAL."""

    def to_representation(self, value: str) -> str:
        return value or "INTERNAL"


class SpanSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    span_id = serializers.CharField()
    parent_id = serializers.CharField()
    name = serializers.CharField()
    kind = KindField(help_text="SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL")
    service = serializers.CharField()
    remote_service = serializers.CharField()
    timestamp = serializers.IntegerField(help_text="µs since the epoch (adjusted for skew unless raw)")
    duration = serializers.IntegerField(help_text="µs")
    error = serializers.BooleanField()
    shared = serializers.BooleanField()
    tags = serializers.DictField(child=serializers.CharField())
    annotations = serializers.ListField(child=serializers.DictField())
    links = serializers.ListField(child=serializers.DictField())
    resource = serializers.DictField()
    scope = serializers.DictField()
    depth = serializers.IntegerField()
    skew = serializers.IntegerField(help_text="µs the span was moved by (clock skew)")


class TraceSerializer(SummarySerializer):
    adjusted = serializers.BooleanField(help_text="Whether clock skew was adjusted")
    spans = SpanSerializer(many=True)


class CompareSideSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    duration = serializers.IntegerField()
    errors = serializers.IntegerField()


class CompareRowSerializer(serializers.Serializer):
    service = serializers.CharField()
    name = serializers.CharField()
    a = CompareSideSerializer()
    b = CompareSideSerializer()
    difference = serializers.IntegerField(help_text="b - a, µs")
    only_in = serializers.CharField(allow_null=True)


class CompareSerializer(serializers.Serializer):
    a = serializers.DictField()
    b = serializers.DictField()
    difference = serializers.IntegerField()
    spans = CompareRowSerializer(many=True)


class EdgeSerializer(serializers.Serializer):
    parent = serializers.CharField()
    child = serializers.CharField()
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    mean_ms = serializers.FloatField()
    p50_ms = serializers.FloatField()
    p90_ms = serializers.FloatField()
    p99_ms = serializers.FloatField()


class GraphSerializer(serializers.Serializer):
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    services = serializers.ListField(child=serializers.DictField())
    edges = EdgeSerializer(many=True)


class GraphParamsSerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class ServiceSerializer(serializers.Serializer):
    name = serializers.CharField()
    operations = serializers.ListField(child=serializers.DictField())
    last_seen = serializers.IntegerField()


class ServicesSerializer(serializers.Serializer):
    services = ServiceSerializer(many=True)


class KeepRuleSerializer(serializers.ModelSerializer):
    """A PUT replaces the service's rule: a field left out takes its default."""

    service = serializers.CharField(max_length=128)  # no uniqueness check: a PUT replaces the rule
    keep_errors = StrictBooleanField(default=True)
    keep_share = StrictFloatField(min_value=0.0, max_value=1.0, default=1.0)
    slower_than_ms = StrictIntegerField(min_value=1, max_value=86_400_000, default=None, allow_null=True)
    retention_days = StrictIntegerField(min_value=1, max_value=3650, default=None, allow_null=True)

    class Meta:
        model = KeepRule
        fields = ["service", "keep_errors", "slower_than_ms", "keep_share", "retention_days", "updated"]
        read_only_fields = ["updated"]

    def validate_service(self, value: str) -> str:
        return SERVICE_NAME.check(value, "service")
