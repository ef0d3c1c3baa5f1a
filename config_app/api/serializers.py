"""Input and output shapes of the config API."""

from __future__ import annotations

from rest_framework import serializers

from config_app.models import Namespace, Revision
from platformsite.api.validators import SLUG, StrictIntegerField

NAME = rf"^{SLUG.pattern}\Z"


class NamespaceInput(serializers.Serializer):
    name = serializers.RegexField(
        NAME,
        help_text="Lower-case letters, digits, - and _.",
        error_messages={"invalid": f"A namespace name is {SLUG.hint}."},
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    json_schema = serializers.JSONField(required=False, allow_null=True, default=None)
    secret_paths = serializers.ListField(
        child=serializers.CharField(max_length=500, trim_whitespace=False),
        required=False,
        default=list,
        max_length=200,
    )


class NamespaceUpdateInput(serializers.Serializer):
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    json_schema = serializers.JSONField(required=False, allow_null=True)
    secret_paths = serializers.ListField(
        child=serializers.CharField(max_length=500, trim_whitespace=False), required=False, max_length=200
    )


class NamespaceOutput(serializers.ModelSerializer):
    class Meta:
        model = Namespace
        fields = ["name", "description", "json_schema", "secret_paths", "created", "updated"]


class LayerHeadOutput(serializers.Serializer):
    env = serializers.CharField()
    revision = serializers.IntegerField(source="number")
    updated = serializers.DateTimeField()


class NamespaceDetailOutput(NamespaceOutput):
    """A namespace with the head revision of each of its layers."""

    layers = LayerHeadOutput(many=True, source="layer_heads")

    class Meta(NamespaceOutput.Meta):
        fields = [*NamespaceOutput.Meta.fields, "layers"]


class WriteInput(serializers.Serializer):
    """Common fields of every write."""

    comment = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    source = serializers.CharField(max_length=64, required=False, default="api")
    expected_revision = StrictIntegerField(
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="The layer's current revision (0: the layer must not exist yet); 409 otherwise.",
    )


class LayerInput(WriteInput):
    data = serializers.JSONField(help_text="The whole layer: a JSON object.")

    def validate_data(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("A layer's data must be a JSON object.")
        return value


class ValueInput(WriteInput):
    value = serializers.JSONField(allow_null=True)


class RollbackInput(WriteInput):
    revision = StrictIntegerField(min_value=1)


class RevisionOutput(serializers.ModelSerializer):
    namespace = serializers.CharField(source="namespace.name")
    revision = serializers.IntegerField(source="number")

    class Meta:
        model = Revision
        fields = ["namespace", "env", "revision", "checksum", "author", "comment", "source", "created"]


class RevisionDataOutput(RevisionOutput):
    """A revision with its data (secret values masked unless the caller holds config:secrets)."""

    data = serializers.JSONField()

    class Meta(RevisionOutput.Meta):
        fields = [*RevisionOutput.Meta.fields, "data"]


class ResolvedOutput(serializers.Serializer):
    namespace = serializers.CharField()
    env = serializers.CharField()
    revision = serializers.IntegerField(help_text="Sum of the layer revisions: grows with every change.")
    revisions = serializers.DictField(child=serializers.IntegerField(), help_text="'<ns>/<env>' -> revision.")
    etag = serializers.CharField()
    path = serializers.CharField(required=False)
    data = serializers.JSONField()


class LayerListOutput(serializers.Serializer):
    namespace = serializers.CharField()
    results = RevisionOutput(many=True)


class ValueOutput(serializers.Serializer):
    namespace = serializers.CharField()
    env = serializers.CharField()
    revision = serializers.IntegerField()
    path = serializers.CharField()
    value = serializers.JSONField()


class DiffOutput(serializers.Serializer):
    namespace = serializers.CharField()
    env = serializers.CharField()
    from_ = serializers.IntegerField(label="from")
    to = serializers.IntegerField()
    added = serializers.ListField(child=serializers.DictField())
    removed = serializers.ListField(child=serializers.DictField())
    changed = serializers.ListField(child=serializers.DictField())

    def get_fields(self):
        # The answer's key is ``from`` (a Python keyword, so the field is declared as ``from_``).
        return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}
