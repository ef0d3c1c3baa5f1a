"""Tables of the discovery service: services, their nodes, per-service change indexes and results.

A ``Service`` is one (name, version); a ``Node`` is one running instance of it, identified by an
id unique across the whole registry.  Every change to a service's nodes bumps that service's
``ServiceIndex`` (never reset, so watchers can trust it) and is recorded as a ``Result`` kept for
``DISCOVERY_HISTORY_SECONDS``.  A node's latest heartbeat lives in the shared cache; the
``last_heartbeat`` column is flushed from it in bulk by the sweep.
"""

from __future__ import annotations

from django.db import models


class Service(models.Model):
    """One version of a named service; it exists while it has nodes."""

    name = models.CharField(max_length=200, help_text="e.g. 'platform.config' or 'orders'.")
    version = models.CharField(max_length=100, default="latest")
    metadata = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="discovery_service_name_version")
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class Node(models.Model):
    """A running instance of a service version, kept alive by heartbeats."""

    class Status(models.TextChoices):
        PASSING = "passing", "passing"
        CRITICAL = "critical", "critical"

    id = models.CharField(max_length=200, primary_key=True, help_text="Unique across every service.")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="nodes")
    address = models.CharField(max_length=253, help_text="An IP address or a host name.")
    port = models.PositiveIntegerField()
    metadata = models.JSONField(default=dict, blank=True, help_text="Labels: string keys and values.")
    endpoints = models.JSONField(
        default=list, blank=True, help_text="[{name, request, response, metadata}] the node serves."
    )
    interval = models.PositiveIntegerField(help_text="Seconds between the node's heartbeats.")
    ttl = models.PositiveIntegerField(help_text="Seconds without a heartbeat before the node expires.")
    deregister_after = models.PositiveIntegerField(
        help_text="Seconds a critical (expired) node stays listed before it is removed."
    )
    registered = models.DateTimeField(help_text="When it was (last) registered.")
    last_heartbeat = models.DateTimeField(help_text="Flushed from the shared cache by the sweep.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PASSING)
    critical_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["service", "id"], name="discovery_node_service")]

    def __str__(self) -> str:
        return f"{self.id} ({self.address}:{self.port})"


class ServiceIndex(models.Model):
    """The change index of one service name: increases with every change, never resets."""

    name = models.CharField(max_length=200, unique=True)
    index = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "service indexes"

    def __str__(self) -> str:
        return f"{self.name}: {self.index}"


class Result(models.Model):
    """One change of a service, as watchers see it (the watch history)."""

    class Action(models.TextChoices):
        CREATE = "create", "create"
        UPDATE = "update", "update"
        DELETE = "delete", "delete"

    action = models.CharField(max_length=8, choices=Action.choices)
    service = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    node_id = models.CharField(max_length=200)
    node = models.JSONField(default=dict, help_text="The node as it was after the change.")
    reason = models.CharField(max_length=32, blank=True, help_text="registered, expired, api, ...")
    timestamp = models.DateTimeField()
    index = models.BigIntegerField(help_text="The service's index after this change.")

    class Meta:
        ordering = ["service", "index"]
        constraints = [models.UniqueConstraint(fields=["service", "index"], name="discovery_result_index")]
        indexes = [models.Index(fields=["timestamp"], name="discovery_result_time")]

    def __str__(self) -> str:
        return f"{self.service}#{self.index} {self.action} {self.node_id}"
