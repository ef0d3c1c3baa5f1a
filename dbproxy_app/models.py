"""Tables of the db service: databases, their tables, row policies and the platform backend's records.

A ``Database`` says where its records live (``backend``: the platform's own database, an
external PostgreSQL, or an SQLite file); its DSN is sealed at rest (:mod:`platformsite.sealing`)
and never served.  ``Record`` holds the records of ``platform`` databases only; the other
backends keep theirs in a table of their own per (database, table).
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models


class Database(models.Model):
    """A named database the API serves records from."""

    class Backend(models.TextChoices):
        PLATFORM = "platform", "platform (the platform's own database)"
        POSTGRESQL = "postgresql", "external PostgreSQL"
        SQLITE = "sqlite", "SQLite file"

    name = models.CharField(max_length=48, unique=True, help_text="Lower-case letters, digits and _.")
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.PLATFORM)
    dsn_sealed = models.TextField(
        blank=True, help_text="The DSN, encrypted (a Fernet token); never served nor logged."
    )
    options = models.JSONField(
        default=dict, blank=True, help_text="Backend options: schema, pool_max, statement_timeout_ms."
    )
    owner = models.CharField(max_length=200, blank=True, help_text="Who created it (service:x or user:y).")
    owner_only = models.BooleanField(
        default=False, help_text="Only its owner (and admin) may use it: a service confined to its own."
    )
    publish_changes = models.BooleanField(
        default=True, help_text="Publish db.record.created|updated|deleted events for each change."
    )
    source = models.CharField(
        max_length=16, default="api", help_text="'api', or 'discovery' for one found in the registry."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Table(models.Model):
    """A table of a database: created explicitly or by its first write."""

    database = models.ForeignKey(Database, on_delete=models.CASCADE, related_name="tables")
    name = models.CharField(max_length=48, help_text="Lower-case letters, digits and _.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["database", "name"]
        constraints = [models.UniqueConstraint(fields=["database", "name"], name="dbproxy_table_unique")]

    def __str__(self) -> str:
        return f"{self.database.name}/{self.name}"


class RowPolicy(models.Model):
    """Which records of a table a role may read or write: a condition over the record and token."""

    class Action(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "write"
        ANY = "*", "*"

    database = models.ForeignKey(Database, on_delete=models.CASCADE, related_name="row_policies")
    table = models.CharField(max_length=48, default="*", help_text="A table name, or * for every table.")
    role = models.CharField(max_length=100, help_text="The auth role whose holders it applies to.")
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.ANY)
    condition = models.TextField(help_text="e.g. metadata.owner == $token.sub (see docs/db.md).")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "row policies"

    def __str__(self) -> str:
        return f"{self.database.name}/{self.table} {self.role} {self.action}: {self.condition}"


class SortedKeys(json.JSONEncoder):
    """JSON written with every object's keys sorted, as the ``sqlite`` backend writes it and as
    PostgreSQL's jsonb keeps no order: on SQLite, where the text is compared, objects are equal
    whatever their keys' order (``data->o=eq.{"a":2,"b":1}`` finds ``{"b":1,"a":2}``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["sort_keys"] = True
        super().__init__(*args, **kwargs)


class Record(models.Model):
    """A record of a ``platform`` database's table (the other backends store theirs themselves)."""

    table = models.ForeignKey(Table, on_delete=models.CASCADE, related_name="records")
    record_id = models.CharField(max_length=128, help_text="The client's id, or a server uuid.")
    created = models.DateTimeField()
    updated = models.DateTimeField()
    version = models.BigIntegerField(default=1, help_text="1 when created, +1 on each update.")
    metadata = models.JSONField(default=dict, help_text="A string map; queried by its GIN index.")
    data = models.JSONField(
        null=True, blank=True, encoder=SortedKeys, help_text="The record's JSON body, or null."
    )
    blob = models.BinaryField(null=True, blank=True, help_text="The record's bytes, or null.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["table", "record_id"], name="dbproxy_record_unique")]
        indexes = [
            models.Index(fields=["table", "updated", "record_id"], name="dbproxy_record_updated"),
            models.Index(fields=["table", "created", "record_id"], name="dbproxy_record_created"),
            models.Index(fields=["table", "version", "record_id"], name="dbproxy_record_version"),
        ]

    def __str__(self) -> str:
        return self.record_id
