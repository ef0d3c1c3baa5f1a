"""Tables of the config service: namespaces, their layers and the immutable revisions of each layer."""

from __future__ import annotations

from django.db import models

GLOBAL = "global"
DEFAULT_ENV = "default"


class Namespace(models.Model):
    """A named configuration document set (``payments``); ``global`` is inherited by every other."""

    name = models.SlugField(max_length=63, unique=True)
    description = models.CharField(max_length=500, blank=True, default="")
    json_schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema every resolved environment must satisfy."
    )
    secret_paths = models.JSONField(
        default=list,
        blank=True,
        help_text="Slash paths (e.g. db/password) whose values are encrypted at rest and masked.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Revision(models.Model):
    """One immutable version of a (namespace, env) layer; writes only ever add revisions."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="revisions")
    env = models.SlugField(max_length=63, help_text="'default' or an environment name (dev, production...).")
    number = models.PositiveIntegerField(help_text="1, 2, 3... per (namespace, env).")
    data = models.JSONField(help_text="The layer's document; secret values are stored as {'$secret': ...}.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the canonical JSON of data.")
    author = models.CharField(max_length=200)
    comment = models.CharField(max_length=500, blank=True, default="")
    source = models.CharField(max_length=64, blank=True, default="api")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["namespace", "env", "number"], name="config_revision_unique_number"
            )
        ]
        indexes = [
            models.Index(fields=["namespace", "env", "-number"], name="config_rev_layer_idx"),
            models.Index(fields=["namespace", "-id"], name="config_rev_audit_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace_id}/{self.env}#{self.number}"


class Layer(models.Model):
    """The head pointer of one (namespace, env) layer: its latest revision, read by resolution."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="layers")
    env = models.SlugField(max_length=63)
    head = models.ForeignKey(Revision, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveIntegerField(help_text="The head revision's number.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["namespace_id", "env"]
        constraints = [models.UniqueConstraint(fields=["namespace", "env"], name="config_layer_unique_env")]

    def __str__(self) -> str:
        return f"{self.namespace_id}/{self.env}@{self.number}"
