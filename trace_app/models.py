"""Tables of the trace service: spans, the live service graph, operations seen, keep rules.

Times are integers in microseconds since the epoch and durations in microseconds (Zipkin's
units; OTLP's nanoseconds are truncated).  Trace ids are stored in one form, 32 lower-hex
characters: a 64-bit (16-hex) id is stored left-padded with zeros.
"""

from __future__ import annotations

from django.db import models


class Span(models.Model):
    """One span, from OTLP or Zipkin.

    On PostgreSQL the table is partitioned by day on ``timestamp`` (see trace_app/store/partitions.py)
    and the primary key is ``(id, timestamp)``; Django sees ``id`` only.
    """

    class Kind(models.TextChoices):
        INTERNAL = "", "internal"
        CLIENT = "CLIENT", "client"
        SERVER = "SERVER", "server"
        PRODUCER = "PRODUCER", "producer"
        CONSUMER = "CONSUMER", "consumer"

    id = models.BigAutoField(primary_key=True)
    trace_id = models.CharField(max_length=32, help_text="32 lower-hex characters.")
    span_id = models.CharField(max_length=16, help_text="16 lower-hex characters.")
    parent_id = models.CharField(max_length=16, blank=True, help_text="Empty for a root span.")
    name = models.CharField(max_length=255, blank=True, help_text="The operation.")
    kind = models.CharField(max_length=8, blank=True, choices=Kind.choices)
    service = models.CharField(max_length=128, help_text="The local service (OTLP: service.name).")
    remote_service = models.CharField(max_length=128, blank=True, help_text="The peer, when known.")
    timestamp = models.BigIntegerField(help_text="Start, microseconds since the epoch.")
    duration = models.BigIntegerField(help_text="Microseconds.")
    error = models.BooleanField(default=False)
    shared = models.BooleanField(default=False, help_text="Zipkin: a server half sharing its client's id.")
    debug = models.BooleanField(default=False)
    tags = models.JSONField(default=dict, blank=True, help_text="Attributes, as strings.")
    annotations = models.JSONField(default=list, blank=True, help_text="[{timestamp, value, attributes?}]")
    links = models.JSONField(default=list, blank=True, help_text="[{trace_id, span_id, attributes?}]")
    resource = models.JSONField(default=dict, blank=True, help_text="Resource attributes (OTLP).")
    scope = models.JSONField(
        default=dict, blank=True, help_text="Instrumentation scope {name, version, attributes}."
    )
    local_endpoint = models.JSONField(default=dict, blank=True, help_text="{ipv4, ipv6, port}")
    remote_endpoint = models.JSONField(default=dict, blank=True, help_text="{serviceName, ipv4, ipv6, port}")

    class Meta:
        indexes = [
            models.Index(fields=["trace_id"], name="span_trace"),
            models.Index(fields=["service", "-timestamp"], name="span_service_time"),
            models.Index(fields=["-timestamp"], name="span_time"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.name} {self.trace_id}/{self.span_id}"


class Edge(models.Model):
    """Calls from one service to another in one minute, per latency bucket (the live service graph).

    Rows are added to with ``INSERT ... ON CONFLICT DO UPDATE`` at ingest; a bucket ``b`` holds
    calls whose duration ``d`` (µs) has ``floor(4 * log2(d)) == b``.
    """

    minute = models.BigIntegerField(help_text="Minutes since the epoch.")
    parent = models.CharField(max_length=128, help_text="The calling service.")
    child = models.CharField(max_length=128, help_text="The called service (or uninstrumented peer).")
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)
    duration_sum = models.BigIntegerField(default=0, help_text="Microseconds.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "parent", "child", "bucket"], name="edge_minute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.parent} -> {self.child} @{self.minute}"


class Operation(models.Model):
    """An operation a service was seen doing (Zipkin's services, span names and remote services)."""

    service = models.CharField(max_length=128)
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=8, blank=True)
    remote_service = models.CharField(max_length=128, blank=True)
    last_seen = models.BigIntegerField(help_text="Microseconds since the epoch (to the minute).")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name", "kind", "remote_service"], name="operation_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.name}"


class TagValue(models.Model):
    """A value seen for one of the autocomplete keys (TRACE_AUTOCOMPLETE_KEYS)."""

    key = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    last_seen = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "value"], name="tag_value_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class KeepRule(models.Model):
    """What to keep of one service's traces (``*``: every service without a rule of its own).

    Applied at ingest: spans of traces with an error, or slower than ``slower_than_ms``, are kept;
    of the rest ``keep_share`` (decided by trace id, so every service keeps the same traces).
    ``retention_days`` overrides TRACE_RETENTION_DAYS for the service.
    """

    service = models.CharField(max_length=128, unique=True)
    keep_errors = models.BooleanField(default=True)
    slower_than_ms = models.PositiveIntegerField(null=True, blank=True)
    keep_share = models.FloatField(default=1.0, help_text="0.0 to 1.0 of the other traces.")
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]

    def __str__(self) -> str:
        return self.service
