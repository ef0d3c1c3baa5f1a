"""Tables of the events service: event records (CloudEvents 1.0)."""

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
        ]

    def __str__(self) -> str:
        return f"{self.type} from {self.source} ({self.event_id})"
