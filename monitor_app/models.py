"""Tables of the monitor service: checks and their flips, alerts (the outbox), pings, service
health, node status, stats samples, maintenance windows and ping keys.

A ``Check`` is one healthcheck: reported by a service's node (kind ``report``, with a TTL) or a
job's pings (kinds ``period`` and ``cron``).  Its ``expires_at`` is the one deadline the state
loop reads (indexed); a node's unchanged reports renew it in the shared cache only, and the loop
moves the column forward when it finds a renewed deadline, so an unchanged result costs no
database write.  Every change of a check's (or a service's) state is a stored ``Flip``; the
``Alert`` rows written with it in the same transaction are the outbox the events are published
from.
"""

from __future__ import annotations

import uuid

from django.db import models

STATES = ("passing", "warning", "critical", "unknown")


class State(models.TextChoices):
    PASSING = "passing", "passing"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"
    UNKNOWN = "unknown", "unknown"


class Check(models.Model):
    """One healthcheck of a service's node, or one job of a service (``node`` empty)."""

    class Kind(models.TextChoices):
        REPORT = "report", "report"
        PERIOD = "period", "period"
        CRON = "cron", "cron"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, help_text="Also the job's ping URL key.")
    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200, blank=True, help_text="Empty for a job check.")
    name = models.CharField(max_length=200, help_text="Unique per (service, node); a slug for jobs.")
    description = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REPORT)
    critical = models.BooleanField(default=True, help_text="Counts in its node's (and service's) health.")
    interval = models.PositiveIntegerField(help_text="Seconds between reports; a period job's period.")
    ttl = models.PositiveIntegerField(help_text="Seconds without a report before critical; a job's grace.")
    schedule = models.CharField(max_length=100, blank=True, help_text="A cron job's cron expression.")
    timezone = models.CharField(max_length=64, default="UTC", help_text="The cron expression's time zone.")
    failures_before_critical = models.PositiveSmallIntegerField(default=3)
    success_before_passing = models.PositiveSmallIntegerField(default=2)
    failure_rate = models.JSONField(
        null=True, blank=True, help_text="{window, threshold, min_samples}: critical past that share."
    )
    flap = models.JSONField(null=True, blank=True, help_text="{window, max_transitions}: flap detection.")
    depends_on = models.JSONField(
        default=list, blank=True, help_text="Parent checks 'service/node/name': a parent down silences it."
    )
    remind_every = models.PositiveIntegerField(default=0, help_text="Seconds between reminders (0: none).")
    status = models.CharField(max_length=8, choices=State.choices, default=State.UNKNOWN)
    reported = models.CharField(max_length=8, choices=State.choices, default=State.UNKNOWN)
    failures = models.PositiveSmallIntegerField(default=0, help_text="Consecutive failures (capped).")
    successes = models.PositiveSmallIntegerField(default=0, help_text="Consecutive successes (capped).")
    samples = models.JSONField(default=list, blank=True, help_text="[[time, ok]] in the failure-rate window.")
    transitions = models.JSONField(default=list, blank=True, help_text="Flip times in the flap window.")
    flapping = models.BooleanField(default=False)
    alerting = models.BooleanField(default=False, help_text="A failed alert is out, not yet recovered.")
    output = models.TextField(blank=True, help_text="The output at the last stored change (4 KiB).")
    truncated = models.BooleanField(default=False)
    results = models.JSONField(default=dict, blank=True)
    last_report = models.DateTimeField(
        null=True, blank=True, help_text="As last stored (the cache is newer)."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The deadline the state loop reads.")
    next_reminder_at = models.DateTimeField(null=True, blank=True)
    runs = models.JSONField(default=dict, blank=True, help_text="A job's open runs: rid -> start time.")
    version = models.PositiveIntegerField(default=0, help_text="Bumped by every write (compare-and-set).")
    created = models.DateTimeField(auto_now_add=True)
    changed = models.DateTimeField(null=True, blank=True, help_text="When its status last changed.")

    class Meta:
        ordering = ["service", "node", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "node", "name"], name="monitor_check_identity"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="monitor_check_expires"),
            models.Index(fields=["next_reminder_at"], name="monitor_check_reminder"),
            models.Index(fields=["service", "status"], name="monitor_check_service_status"),
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.node}/{self.name}"

    @property
    def ref(self) -> str:
        return f"{self.service}/{self.node}/{self.name}"


class ServiceHealth(models.Model):
    """A service's health: healthy while at least ``min_share`` of its nodes pass."""

    class Status(models.TextChoices):
        HEALTHY = "healthy", "healthy"
        DEGRADED = "degraded", "degraded"
        UNKNOWN = "unknown", "unknown"

    name = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNKNOWN)
    nodes = models.PositiveIntegerField(default=0)
    passing = models.PositiveIntegerField(default=0)
    min_share = models.FloatField(null=True, blank=True, help_text="Override of MONITOR_HEALTHY_SHARE.")
    alerting = models.BooleanField(default=False)
    remind_every = models.PositiveIntegerField(default=0, help_text="Seconds between reminders (0: none).")
    next_reminder_at = models.DateTimeField(null=True, blank=True, db_index=True)
    changed = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class Flip(models.Model):
    """One change of a check's (or, with no check, a service's) state."""

    check_ref = models.ForeignKey(
        Check, null=True, blank=True, on_delete=models.CASCADE, related_name="flips"
    )
    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=200, blank=True, help_text="The check's name; empty for a service.")
    old = models.CharField(max_length=8)
    new = models.CharField(max_length=8)
    reason = models.CharField(max_length=64, help_text="reported, expired, late, fail, exit, ...")
    output = models.TextField(blank=True)
    at = models.DateTimeField()
    alert = models.CharField(max_length=64, blank=True, help_text="The event type it raised, if any.")
    suppressed = models.CharField(max_length=32, blank=True, help_text="maintenance, dependency, flapping")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["check_ref", "at"], name="monitor_flip_check_at"),
            models.Index(fields=["service", "at"], name="monitor_flip_service_at"),
            models.Index(fields=["at"], name="monitor_flip_at"),
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.node}/{self.name}: {self.old} -> {self.new}"


class Alert(models.Model):
    """An alert to publish as a platform event (the outbox): written with its flip, published after
    commit, and again by the state loop until it is (the event id makes a repeat harmless)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, help_text="The event's id.")
    type = models.CharField(max_length=64)
    subject = models.CharField(max_length=500)
    data = models.JSONField(default=dict)
    flip = models.ForeignKey(Flip, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    created = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created"]
        indexes = [
            models.Index(
                fields=["created"], name="monitor_alert_unpublished", condition=models.Q(published_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.subject}"


class Ping(models.Model):
    """One ping of a job check."""

    class Kind(models.TextChoices):
        SUCCESS = "success", "success"
        START = "start", "start"
        FAIL = "fail", "fail"
        LOG = "log", "log"

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="pings")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    rid = models.UUIDField(null=True, blank=True, help_text="Pairs a start with its end.")
    duration = models.FloatField(null=True, blank=True, help_text="Seconds since the paired start.")
    method = models.CharField(max_length=8)
    remote_addr = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True, help_text="Up to MONITOR_PING_BODY_LIMIT bytes.")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["check_ref", "-id"], name="monitor_ping_check")]

    def __str__(self) -> str:
        return f"{self.kind} {self.check_ref_id} at {self.at}"


class NodeStatus(models.Model):
    """A node's reported status (UNKNOWN, STARTED, RUNNING, STOPPED) and info."""

    class Status(models.TextChoices):
        UNKNOWN = "unknown", "unknown"
        STARTED = "started", "started"
        RUNNING = "running", "running"
        STOPPED = "stopped", "stopped"

    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UNKNOWN)
    info = models.JSONField(default=dict, blank=True)
    interval = models.PositiveIntegerField(default=0)
    ttl = models.PositiveIntegerField(default=0)
    reported = models.DateTimeField()

    class Meta:
        ordering = ["service", "node"]
        verbose_name_plural = "node statuses"
        constraints = [models.UniqueConstraint(fields=["service", "node"], name="monitor_node_status")]

    def __str__(self) -> str:
        return f"{self.service}/{self.node}: {self.status}"


class StatSample(models.Model):
    """Process stats of a node: raw samples, downsampled to minutes and hours by a task."""

    class Resolution(models.TextChoices):
        RAW = "raw", "raw"
        MINUTE = "minute", "minute"
        HOUR = "hour", "hour"

    service = models.CharField(max_length=200)
    node = models.CharField(max_length=200)
    resolution = models.CharField(max_length=8, choices=Resolution.choices, default=Resolution.RAW)
    at = models.DateTimeField()
    samples = models.PositiveIntegerField(default=1, help_text="Raw samples merged into this one.")
    cpu = models.FloatField(null=True, blank=True, help_text="Percent of one core.")
    memory = models.FloatField(null=True, blank=True, help_text="Resident bytes.")
    disk = models.FloatField(null=True, blank=True, help_text="Bytes used.")
    runtime = models.FloatField(null=True, blank=True, help_text="Seconds since the process started.")
    threads = models.PositiveIntegerField(null=True, blank=True)
    seconds = models.FloatField(default=0, help_text="Seconds the request counts cover.")
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    dropped = models.PositiveBigIntegerField(default=0)
    endpoints = models.JSONField(default=list, blank=True, help_text="[{method, success, errors, dropped}]")

    class Meta:
        ordering = ["service", "node", "at"]
        indexes = [
            models.Index(fields=["service", "resolution", "at"], name="monitor_stat_service"),
            models.Index(fields=["resolution", "at"], name="monitor_stat_resolution"),
        ]

    def __str__(self) -> str:
        return f"{self.service}/{self.node} {self.resolution} {self.at}"


class Maintenance(models.Model):
    """A window silencing a service's (or one check's) alerts."""

    service = models.CharField(max_length=200)
    check_ref = models.ForeignKey(
        Check, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance"
    )
    starts = models.DateTimeField()
    ends = models.DateTimeField()
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts"]
        indexes = [models.Index(fields=["service", "ends"], name="monitor_maintenance_service")]

    def __str__(self) -> str:
        return f"{self.service} {self.starts} - {self.ends}"


class PingKey(models.Model):
    """A service's ping key: ``/ping/<key>/<slug>`` reaches its job checks by slug."""

    key = models.CharField(max_length=64, unique=True)
    service = models.CharField(max_length=200)
    created = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["service", "id"]

    def __str__(self) -> str:
        return f"ping key of {self.service}"
