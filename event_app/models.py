"""Tables of the events service: event records (CloudEvents 1.0), counters, subscriptions, deliveries."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    """One event, as CloudEvents 1.0 describes it, plus correlation (``root_id``) and trace context.

    ``(source, event_id)`` is unique: a producer re-sending an event is acknowledged, not duplicated.
    The primary key is the platform's own sequence: it orders the stream and is what a
    subscriber resumes from (``last_event_id``).
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.CharField(max_length=200, help_text="The CloudEvents 'id' given by the producer.")
    source = models.CharField(max_length=500, help_text="The CloudEvents 'source' (the original's origin).")
    type = models.CharField(max_length=200, help_text="e.g. 'config.namespace.changed'.")
    specversion = models.CharField(max_length=8, default="1.0")
    time = models.DateTimeField(help_text="When it happened (the producer's clock, or receipt time).")
    subject = models.CharField(max_length=500, blank=True)
    datacontenttype = models.CharField(max_length=200, blank=True, default="application/json")
    dataschema = models.CharField(max_length=500, blank=True)
    data = models.JSONField(null=True, blank=True)
    data_base64 = models.TextField(blank=True, help_text="Binary data, base64-encoded, when not JSON.")
    extensions = models.JSONField(default=dict, blank=True, help_text="Other CloudEvents attributes, kept.")
    root_id = models.CharField(max_length=200, blank=True, help_text="Correlates the events of one flow.")
    traceparent = models.CharField(max_length=64, blank=True)
    received = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="event_source_id_unique")]
        indexes = [
            models.Index(fields=["type", "-time"], name="event_type_time"),
            models.Index(fields=["source", "-time"], name="event_source_time"),
            models.Index(fields=["-time"], name="event_time"),
            models.Index(fields=["root_id"], name="event_root"),
            models.Index(fields=["subject"], name="event_subject"),
            # Search pages are ordered by the sequence: (filter column, id) serves both orders.
            models.Index(fields=["type", "id"], name="event_type_id"),
            models.Index(fields=["source", "id"], name="event_source_id"),
            models.Index(fields=["received"], name="event_received"),
        ]

    def __str__(self) -> str:
        return f"{self.type} from {self.source} ({self.event_id})"


class EventCount(models.Model):
    """How many events of one type (or from one source) were received in one minute (or hour).

    Counters are kept per ``shard`` so that concurrent publishers of the same type rarely wait for
    one another's row lock; readers sum the shards.  Minute rows are written on publish (in the
    publishing transaction); beat rolls finished hours up into hour rows.
    """

    class Interval(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"

    class Dimension(models.TextChoices):
        TYPE = "type"
        SOURCE = "source"

    interval = models.CharField(max_length=6, choices=Interval.choices)
    dimension = models.CharField(max_length=6, choices=Dimension.choices)
    key = models.CharField(max_length=500, help_text="The event type or source counted.")
    bucket = models.DateTimeField(help_text="Start of the minute or hour (receipt time, UTC).")
    shard = models.SmallIntegerField(default=0)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["interval", "dimension", "key", "bucket", "shard"], name="eventcount_unique"
            )
        ]
        indexes = [models.Index(fields=["interval", "dimension", "bucket"], name="eventcount_range")]

    def __str__(self) -> str:
        return f"{self.dimension}={self.key} {self.bucket:%Y-%m-%d %H:%M} {self.count}"


class Subscription(models.Model):
    """A standing interest in events matching a filter, delivered to a webhook (or read over a websocket)."""

    class Sink(models.TextChoices):
        WEBHOOK = "webhook"
        WEBSOCKET = "websocket"

    name = models.SlugField(max_length=100, unique=True)
    owner = models.CharField(max_length=200, blank=True, help_text="Subject that created it.")
    types = models.JSONField(
        default=list, blank=True, help_text="Event types; 'order.*' matches by prefix. Empty: all."
    )
    sources = models.JSONField(default=list, blank=True, help_text="Exact sources. Empty: all.")
    subject_prefix = models.CharField(max_length=500, blank=True)
    sink = models.CharField(max_length=10, choices=Sink.choices, default=Sink.WEBHOOK)
    url = models.URLField(max_length=1000, blank=True, help_text="Webhook URL (http or https).")
    secret = models.CharField(max_length=200, blank=True, help_text="HMAC-SHA256 key (whsec_<base64>).")
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One event to deliver to one webhook subscription, with its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead", "dead letter"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["subscription", "event"], name="delivery_subscription_event")
        ]
        indexes = [
            models.Index(fields=["subscription", "status", "id"], name="delivery_queue"),
            # A subscription's queue head.  Partial, so it stays small and PostgreSQL's planner
            # takes it: with (subscription, status, id) alone it walked the primary key past the
            # delivered rows instead (tens to hundreds of ms a lookup behind a large history).
            models.Index(
                fields=["subscription", "id"], condition=models.Q(status="pending"), name="delivery_pending"
            ),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} -> {self.subscription_id}: {self.status}"
