"""Input and output shapes of the db API.  A DSN is write-only: no output carries it."""

from __future__ import annotations

from rest_framework import serializers

from dbproxy_app.models import Database, RowPolicy, Table
from platformsite.api.validators import StrictBooleanField, StrictIntegerField


class DatabaseInput(serializers.Serializer):
    name = serializers.CharField(max_length=48, help_text="Lower-case letters, digits and _.")
    backend = serializers.ChoiceField(choices=Database.Backend.choices, default=Database.Backend.PLATFORM)
    dsn = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        trim_whitespace=False,
        help_text="postgresql: a connection string; sqlite: a file name; platform: none. Never returned.",
    )
    options = serializers.DictField(
        required=False, default=dict, help_text="schema, pool_max, statement_timeout_ms."
    )
    owner_only = StrictBooleanField(required=False, default=False)
    publish_changes = StrictBooleanField(
        required=False,
        help_text="Publish db.record.* events (seen by every events:read holder). Default: true, "
        "false for an owner_only database.",
    )


class DatabaseUpdateInput(serializers.Serializer):
    dsn = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, write_only=True, trim_whitespace=False
    )
    options = serializers.DictField(required=False)
    owner_only = StrictBooleanField(required=False)
    publish_changes = StrictBooleanField(required=False)


class DatabaseOutput(serializers.ModelSerializer):
    has_dsn = serializers.SerializerMethodField(help_text="Whether a DSN is set (it is never shown).")

    class Meta:
        model = Database
        fields = [
            "name",
            "backend",
            "has_dsn",
            "options",
            "owner",
            "owner_only",
            "publish_changes",
            "source",
            "created",
            "updated",
        ]

    def get_has_dsn(self, database: Database) -> bool:
        return bool(database.dsn_sealed)


class TableInput(serializers.Serializer):
    name = serializers.CharField(max_length=48, help_text="Lower-case letters, digits and _.")


class TableOutput(serializers.ModelSerializer):
    database = serializers.CharField(source="database.name")

    class Meta:
        model = Table
        fields = ["name", "database", "created"]


class RowPolicyInput(serializers.Serializer):
    table = serializers.CharField(max_length=48, default="*", help_text="A table, or * for every table.")
    role = serializers.CharField(max_length=100)
    action = serializers.ChoiceField(choices=RowPolicy.Action.choices, default=RowPolicy.Action.ANY)
    condition = serializers.CharField(max_length=2000, help_text="e.g. metadata.owner == $token.sub")


class RowPolicyOutput(serializers.ModelSerializer):
    class Meta:
        model = RowPolicy
        fields = ["id", "table", "role", "action", "condition", "created"]


class RecordInput(serializers.Serializer):
    """A record to store (checked by the service: metadata values must be strings)."""

    id = serializers.CharField(required=False, help_text="The client's id (else a server uuid).")
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    data = serializers.JSONField(required=False, allow_null=True)
    bytes = serializers.CharField(required=False, allow_null=True, help_text="Base64 (instead of data).")
    expected_version = StrictIntegerField(required=False, help_text="409 unless the record is at it.")


class RecordOutput(serializers.Serializer):
    id = serializers.CharField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    version = serializers.IntegerField()
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    data = serializers.JSONField(allow_null=True)
    bytes = serializers.CharField(allow_null=True)


class RecordPage(serializers.Serializer):
    results = RecordOutput(many=True, help_text="The records (with only the fields select= names).")
    next = serializers.CharField(allow_null=True, help_text="The next page's URL (a keyset cursor), or null.")
    count = serializers.IntegerField(allow_null=True, help_text="With Prefer: count=exact|planned|estimated.")


class DeleteItem(serializers.Serializer):
    id = serializers.CharField()
    expected_version = StrictIntegerField(required=False)


class BulkInput(serializers.Serializer):
    create = RecordInput(many=True, required=False)
    update = RecordInput(many=True, required=False, help_text="Full replacements (id required).")
    patch = RecordInput(many=True, required=False, help_text="Partial updates (id required).")
    delete = DeleteItem(many=True, required=False)


class BulkOutput(serializers.Serializer):
    created = RecordOutput(many=True)
    updated = RecordOutput(many=True)
    deleted = serializers.ListField(child=serializers.CharField())
