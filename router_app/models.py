"""Tables of the router service.

Callers publish per-window call statistics (``StatsWindow``, one row per caller, target
service, node, endpoint and window); a periodic task merges a service's recent windows across
callers into one ``NodeState`` per node (its counts, latency, weight and ejection), recording
each ejection and unejection as an ``OutlierEvent`` (Envoy's ``OutlierDetectionEvent``).
``Policy`` holds a service's outlier-detection parameters (Envoy's names and defaults) and its
dry-run switch; ``Label``, ``Rule`` and ``RateLimit`` are set by operators.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class Policy(models.Model):
    """A service's routing policy: Envoy outlier-detection parameters, enforce or dry run."""

    service = models.CharField(max_length=200, unique=True)
    enforce = models.BooleanField(default=True, help_text="False: decisions are recorded, not applied.")
    consecutive_5xx = models.PositiveIntegerField(default=5)
    interval = models.PositiveIntegerField(default=10, help_text="Seconds between two evaluations.")
    base_ejection_time = models.PositiveIntegerField(default=30, help_text="Seconds, times the ejections.")
    max_ejection_time = models.PositiveIntegerField(default=300, help_text="Longest ejection, seconds.")
    max_ejection_percent = models.PositiveSmallIntegerField(default=10, validators=PERCENT)
    enforcing_consecutive_5xx = models.PositiveSmallIntegerField(default=100, validators=PERCENT)
    success_rate_minimum_hosts = models.PositiveIntegerField(default=5)
    success_rate_request_volume = models.PositiveIntegerField(default=100)
    success_rate_stdev_factor = models.PositiveIntegerField(default=1900, help_text="Thousandths.")
    enforcing_success_rate = models.PositiveSmallIntegerField(default=100, validators=PERCENT)
    failure_percentage_threshold = models.PositiveSmallIntegerField(default=85, validators=PERCENT)
    failure_percentage_minimum_hosts = models.PositiveIntegerField(default=5)
    failure_percentage_request_volume = models.PositiveIntegerField(default=50)
    enforcing_failure_percentage = models.PositiveSmallIntegerField(default=0, validators=PERCENT)
    evaluated = models.DateTimeField(null=True, blank=True, help_text="The last evaluation.")
    revision = models.BigIntegerField(default=0, help_text="Grows with every change of the routes.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"{self.service} ({'enforce' if self.enforce else 'dry run'})"


class StatsWindows(models.QuerySet):
    def recent(self, now: float) -> StatsWindows:
        """The windows received in the last ``ROUTER_LOOKBACK_SECONDS``: a caller sends a window
        once it has closed, up to a window's length later, so what is recent is told by its
        arrival, not its start (by its start, a window was often older than the lookback when it
        came). One that started before its window and a sending round could have closed within
        the lookback is a backlog sent late (after an outage), not current calls, and is left out."""
        lookback, window = settings.ROUTER_LOOKBACK_SECONDS, settings.ROUTER_WINDOW_SECONDS
        return self.filter(
            received__gte=datetime.fromtimestamp(now - lookback, UTC),
            start__gte=datetime.fromtimestamp(now - lookback - 2 * window, UTC),
        )


class StatsWindow(models.Model):
    """One caller's calls to one node (and endpoint) of a service during one window."""

    caller = models.CharField(max_length=200)
    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200, blank=True, help_text="Blank: calls dropped before a pick.")
    endpoint = models.CharField(max_length=200, blank=True)
    start = models.DateTimeField()
    seconds = models.PositiveIntegerField()
    requests = models.PositiveBigIntegerField()
    successes = models.PositiveBigIntegerField()
    errors = models.PositiveBigIntegerField(help_text="5xx answers and connection failures.")
    timeouts = models.PositiveBigIntegerField()
    dropped = models.PositiveBigIntegerField(help_text="Calls not made: rate limit or open breaker.")
    consecutive_5xx = models.PositiveIntegerField(help_text="Longest run of failures in the window.")
    latency = models.JSONField(default=dict, help_text="{buckets: {index: count}, sum_ms}")
    received = models.DateTimeField()

    objects = StatsWindows.as_manager()

    class Meta:
        ordering = ["service", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "service", "node", "endpoint", "start"], name="router_window_key"
            )
        ]
        indexes = [
            models.Index(fields=["service", "start"], name="router_window_service"),
            models.Index(fields=["start"], name="router_window_start"),  # due services, pruning
        ]

    def __str__(self) -> str:
        return f"{self.caller}->{self.service}/{self.node} @{self.start:%H:%M:%S}"


class NodeState(models.Model):
    """A node as the last evaluation left it: merged counts, latency, weight and ejection."""

    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    requests = models.PositiveBigIntegerField(default=0)
    successes = models.PositiveBigIntegerField(default=0)
    timeouts = models.PositiveBigIntegerField(default=0)
    dropped = models.PositiveBigIntegerField(default=0)
    success_rate = models.FloatField(null=True, blank=True)
    latency_mean_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)
    weight = models.PositiveSmallIntegerField(default=100, help_text="Served weight (0-100).")
    computed_weight = models.PositiveSmallIntegerField(default=100, help_text="Weight from the stats.")
    factors = models.JSONField(default=dict, help_text="What the weight was computed from.")
    ejected = models.BooleanField(default=False)
    ejected_until = models.DateTimeField(null=True, blank=True)
    ejection_type = models.CharField(max_length=32, blank=True)
    ejections = models.PositiveIntegerField(default=0, help_text="Envoy's num_ejections (the multiplier).")
    last_action = models.DateTimeField(null=True, blank=True)
    reasons = models.JSONField(default=list, help_text="Why the node has its weight, in words.")
    updated = models.DateTimeField()

    class Meta:
        ordering = ["service", "node"]
        constraints = [models.UniqueConstraint(fields=["service", "node"], name="router_node_state")]

    def __str__(self) -> str:
        return f"{self.service}/{self.node} w={self.weight}{' ejected' if self.ejected else ''}"


class OutlierEvent(models.Model):
    """One decision, in the shape of Envoy's ``OutlierDetectionEvent``, with the weight factors."""

    class Type(models.TextChoices):
        CONSECUTIVE_5XX = "consecutive_5xx", "consecutive_5xx"
        SUCCESS_RATE = "success_rate", "success_rate"
        FAILURE_PERCENTAGE = "failure_percentage", "failure_percentage"

    class Action(models.TextChoices):
        EJECT = "eject", "eject"
        UNEJECT = "uneject", "uneject"

    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    type = models.CharField(max_length=32, choices=Type.choices)
    action = models.CharField(max_length=8, choices=Action.choices)
    num_ejections = models.PositiveIntegerField()
    enforced = models.BooleanField()
    host_rate = models.FloatField(null=True, blank=True, help_text="The node's success rate (0-100).")
    service_average = models.FloatField(null=True, blank=True, help_text="Average success rate (0-100).")
    threshold = models.FloatField(null=True, blank=True, help_text="The threshold it was held to.")
    secs_since_last_action = models.PositiveIntegerField(null=True, blank=True)
    factors = models.JSONField(default=dict)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["service", "-id"], name="router_event_service"),
            models.Index(fields=["timestamp"], name="router_event_time"),
        ]

    #: What a decision records (the outlier engine's event, as stored and as answered).
    DECISION_FIELDS = (
        "node",
        "version",
        "type",
        "action",
        "num_ejections",
        "enforced",
        "host_rate",
        "service_average",
        "threshold",
        "secs_since_last_action",
        "factors",
    )

    def __str__(self) -> str:
        return f"{self.service}/{self.node} {self.action} ({self.type})"


class Label(models.Model):
    """Puts ``key=value`` on ``weight`` percent of a version's nodes (higher priority wins)."""

    service = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    key = models.CharField(max_length=63)
    value = models.CharField(max_length=200)
    weight = models.PositiveSmallIntegerField(validators=PERCENT, help_text="Percent of the nodes.")
    priority = models.IntegerField(default=0, help_text="Higher wins.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "version", "key", "value"], name="router_label_key"),
            models.CheckConstraint(condition=models.Q(weight__lte=100), name="router_label_weight"),
        ]

    def __str__(self) -> str:
        return f"{self.service}@{self.version} {self.key}={self.value} {self.weight}% p{self.priority}"


class Rule(models.Model):
    """Sends ``weight`` percent of the requests labelled ``key=value`` to ``version``."""

    service = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    key = models.CharField(max_length=63)
    value = models.CharField(max_length=200)
    weight = models.PositiveSmallIntegerField(validators=PERCENT, help_text="Percent of the requests.")
    priority = models.IntegerField(default=0, help_text="Higher wins.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "-priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "version", "key", "value", "priority"], name="router_rule_key"
            ),
            models.CheckConstraint(condition=models.Q(weight__lte=100), name="router_rule_weight"),
        ]

    def __str__(self) -> str:
        return f"{self.service}: {self.key}={self.value} -> {self.version} {self.weight}% p{self.priority}"


class RateLimit(models.Model):
    """A token bucket per (service, caller), enforced by the callers' SDK (``*``: any caller)."""

    service = models.CharField(max_length=200)
    caller = models.CharField(max_length=200, help_text="A caller name, or * for every other caller.")
    rate = models.FloatField(help_text="Tokens (requests) per second.")
    burst = models.PositiveIntegerField(help_text="Bucket size.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service", "caller"]
        constraints = [models.UniqueConstraint(fields=["service", "caller"], name="router_rate_limit_key")]

    def __str__(self) -> str:
        return f"{self.service} <- {self.caller}: {self.rate}/s burst {self.burst}"
