"""Input validation and output shapes of the router API (kept apart).

Stats batches are checked by ``router_app.services.stats`` (a batch of thousands of windows
through serializer fields would cost more than storing it); ``RouterWindowInput`` documents their shape.
"""

from __future__ import annotations

from rest_framework import serializers

from platformsite.api.validators import StrictBooleanField, StrictFloatField, StrictIntegerField
from router_app import services
from router_app.outlier import Params
from router_app.services.rules import PRIORITY_LIMIT

PERCENT_PARAMS = {name for name in Params.names() if name.startswith("enforcing_")} | {
    "max_ejection_percent",
    "failure_percentage_threshold",
}


def _named(grammar, what: str):
    def check(value: str) -> str:
        if not grammar.matches(value):
            raise serializers.ValidationError(f"Not a valid {what}: {grammar.hint}.")
        return value

    return check


def _name_field(max_length: int, grammar, what: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length, trim_whitespace=False, validators=[_named(grammar, what)], **kwargs
    )


class RouterLabelInput(serializers.Serializer):
    service = _name_field(200, services.SERVICE, "service name")
    version = _name_field(100, services.VERSION_NAME, "version")
    key = _name_field(63, services.LABEL_KEY, "label key")
    value = _name_field(200, services.LABEL_VALUE, "label value")
    weight = StrictIntegerField(min_value=0, max_value=100, help_text="0-100.")
    priority = StrictIntegerField(
        min_value=-PRIORITY_LIMIT, max_value=PRIORITY_LIMIT, default=0, help_text="Higher wins."
    )


class RouterRuleInput(RouterLabelInput):
    weight = StrictIntegerField(min_value=0, max_value=100, help_text="Percent of the matching requests.")


class RouterLabelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    version = serializers.CharField()
    key = serializers.CharField()
    value = serializers.CharField()
    weight = serializers.IntegerField()
    priority = serializers.IntegerField()
    updated = serializers.CharField()


RouterRuleOutput = RouterLabelOutput


class RouterRateLimitInput(serializers.Serializer):
    service = _name_field(200, services.SERVICE, "service name")
    caller = serializers.CharField(
        max_length=200, trim_whitespace=False, help_text="A caller's name, or * for every other caller."
    )
    rate = StrictFloatField(min_value=0.001, max_value=1_000_000, help_text="Requests per second.")
    burst = StrictIntegerField(min_value=1, max_value=1_000_000)

    def validate_caller(self, value: str) -> str:
        if value != "*" and not services.CALLER.matches(value):
            raise serializers.ValidationError(f"A caller name ({services.CALLER.hint}) or *.")
        return value


class RouterRateLimitOutput(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField()
    caller = serializers.CharField()
    rate = serializers.FloatField()
    burst = serializers.IntegerField()


def _param_fields() -> dict[str, serializers.Field]:
    fields: dict[str, serializers.Field] = {}
    for name in Params.names():
        low = 1 if name in {"interval", "base_ejection_time", "max_ejection_time"} else 0
        high = 100 if name in PERCENT_PARAMS else 1_000_000
        fields[name] = StrictIntegerField(required=False, min_value=low, max_value=high)
    return fields


class RouterOutlierDetectionInput(serializers.Serializer):
    """The parameters nested as a read answers them (``GET`` then ``PATCH`` round-trips)."""

    def get_fields(self):
        return _param_fields()

    def to_internal_value(self, data):
        unknown = (
            sorted(str(key)[:100] for key in data if key not in self.fields) if isinstance(data, dict) else []
        )
        if unknown:
            raise serializers.ValidationError({key: ["Unknown field."] for key in unknown[:20]})
        return super().to_internal_value(data)


class RouterPolicyInput(serializers.Serializer):
    enforce = StrictBooleanField(required=False, help_text="False: a dry run (decisions recorded only).")

    def get_fields(self):
        fields = super().get_fields()
        fields.update(_param_fields())
        fields["outlier_detection"] = RouterOutlierDetectionInput(
            required=False, help_text="The parameters nested, as a read answers them (or each at the top)."
        )
        return fields

    def validate(self, attrs):
        nested = attrs.pop("outlier_detection", {})
        twice = sorted(set(nested) & set(attrs))
        if twice:
            raise serializers.ValidationError({"outlier_detection": [f"{', '.join(twice)} given twice."]})
        return {**attrs, **nested}


class RouterOutlierDetectionOutput(serializers.Serializer):
    def get_fields(self):
        return {name: serializers.IntegerField() for name in Params.names()}


class RouterPolicyOutput(serializers.Serializer):
    service = serializers.CharField()
    enforce = serializers.BooleanField()
    outlier_detection = RouterOutlierDetectionOutput()
    evaluated = serializers.CharField(allow_null=True)
    revision = serializers.IntegerField()


class RouterServiceOutput(RouterPolicyOutput):
    nodes = serializers.IntegerField()
    ejected = serializers.IntegerField()


class RouterNodeStateOutput(serializers.Serializer):
    node = serializers.CharField()
    version = serializers.CharField()
    weight = serializers.IntegerField(help_text="Served weight (100 for every node in a dry run).")
    computed_weight = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["active", "ejected"])
    ejected_until = serializers.CharField(allow_null=True)
    ejection_type = serializers.CharField(allow_null=True)
    ejections = serializers.IntegerField()
    requests = serializers.IntegerField()
    successes = serializers.IntegerField()
    timeouts = serializers.IntegerField()
    dropped = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    latency_mean_ms = serializers.FloatField(allow_null=True)
    latency_p99_ms = serializers.FloatField(allow_null=True)
    factors = serializers.DictField()
    reasons = serializers.ListField(child=serializers.CharField())
    updated = serializers.CharField()


class RouterEventOutput(serializers.Serializer):
    """An ``OutlierDetectionEvent`` (Envoy's fields), with the weight factors."""

    id = serializers.IntegerField()
    node = serializers.CharField()
    version = serializers.CharField()
    type = serializers.CharField(help_text="consecutive_5xx, success_rate or failure_percentage.")
    action = serializers.ChoiceField(choices=["eject", "uneject"])
    num_ejections = serializers.IntegerField()
    enforced = serializers.BooleanField()
    host_rate = serializers.FloatField(allow_null=True)
    service_average = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    secs_since_last_action = serializers.IntegerField(allow_null=True)
    factors = serializers.DictField()
    timestamp = serializers.CharField()


class RouterRateLimitedOutput(serializers.Serializer):
    caller = serializers.CharField()
    dropped = serializers.IntegerField(help_text="Calls its rate limit refused in the lookback.")


class RouterDecisionsOutput(RouterPolicyOutput):
    nodes = RouterNodeStateOutput(many=True)
    events = RouterEventOutput(many=True, help_text="The last 50 decisions, newest first.")
    rate_limited = RouterRateLimitedOutput(many=True, help_text="As the callers reported them.")


class RouterEvaluationOutput(serializers.Serializer):
    service = serializers.CharField()
    nodes = serializers.IntegerField()
    events = serializers.IntegerField()
    changed = serializers.BooleanField()


class RouterRouteNodeOutput(serializers.Serializer):
    id = serializers.CharField()
    address = serializers.CharField()
    port = serializers.IntegerField()
    metadata = serializers.DictField()
    labels = serializers.DictField(help_text="Router labels the node carries.")
    weight = serializers.IntegerField(help_text="0-100; 0 while ejected.")
    state = serializers.ChoiceField(choices=["active", "ejected"])
    ejected_until = serializers.CharField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField())


class RouterRouteVersionOutput(serializers.Serializer):
    version = serializers.CharField()
    share = serializers.FloatField(help_text="Percent of this caller's requests (with its labels).")
    nodes = RouterRouteNodeOutput(many=True)


class RouterRateLimitBucketOutput(serializers.Serializer):
    rate = serializers.FloatField()
    burst = serializers.IntegerField()


class RouterRoutesOutput(serializers.Serializer):
    service = serializers.CharField()
    index = serializers.IntegerField(help_text="Discovery's index of the service.")
    revision = serializers.IntegerField(help_text="Grows with every change of the routes.")
    enforce = serializers.BooleanField()
    caller = serializers.CharField(allow_null=True)
    request_labels = serializers.DictField(child=serializers.CharField())
    versions = RouterRouteVersionOutput(many=True)
    labels = RouterLabelOutput(many=True)
    rules = RouterRuleOutput(many=True, help_text="Every rule, highest priority first.")
    rules_applied = RouterRuleOutput(many=True, help_text="The rules requests with these labels follow.")
    rate_limits = serializers.DictField(child=RouterRateLimitBucketOutput())
    rate_limit = RouterRateLimitBucketOutput(allow_null=True, help_text="This caller's bucket, if any.")
    outlier_detection = RouterOutlierDetectionOutput()
    generated = serializers.CharField()
    expires = serializers.CharField()
    ttl = serializers.IntegerField()


class RouterLatencyInput(serializers.Serializer):
    buckets = serializers.DictField(child=StrictIntegerField(min_value=0), help_text="index -> count")
    sum_ms = StrictFloatField(min_value=0)


class RouterWindowInput(serializers.Serializer):
    service = serializers.CharField()
    node = serializers.CharField(help_text="'' for calls dropped before a node was picked.")
    endpoint = serializers.CharField(required=False)
    start = StrictIntegerField(help_text="Seconds since the epoch.")
    seconds = StrictIntegerField(required=False, min_value=1, max_value=3600)
    requests = StrictIntegerField(min_value=0)
    successes = StrictIntegerField(min_value=0)
    errors = StrictIntegerField(min_value=0, required=False)
    timeouts = StrictIntegerField(min_value=0, required=False)
    dropped = StrictIntegerField(min_value=0, required=False)
    consecutive_5xx = StrictIntegerField(min_value=0, required=False)
    latency = RouterLatencyInput(required=False)


class RouterStatsInput(serializers.Serializer):
    caller = serializers.CharField(required=False, help_text="Who calls; the token's subject by default.")
    windows = RouterWindowInput(many=True)


class RouterStatsOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    skipped = serializers.ListField(
        child=serializers.DictField(), help_text="{window, code: unknown_service|too_old|superseded, service}"
    )
