"""Input validation and output shapes of the discovery API (kept apart).

Registration input is only collected here: every field, its type included, is checked by
``services.validate_registration``, in one pass that names every bad field, so the SDK, the CLI
and ``runservice`` get the same answers (a DRF ``CharField`` would turn ``123`` into ``"123"``
and stop at a blank field before the other checks ran).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class _Text(serializers.JSONField):
    """Taken as sent (so ``123`` is refused, not made ``"123"``); documented as a string."""


@extend_schema_field(OpenApiTypes.INT)
class _Integer(serializers.JSONField):
    """Taken as sent; documented as an integer."""


class RegisterInput(serializers.Serializer):
    id = _Text(required=False, default=None, help_text="generated when missing")
    service = _Text(required=False, default=None, help_text="required")
    version = _Text(required=False, default="latest")
    address = _Text(required=False, default=None, help_text="required: an IP address or a host name")
    port = _Integer(required=False, default=None, help_text="required: 1-65535")
    metadata = serializers.JSONField(required=False, default=dict)
    endpoints = serializers.JSONField(required=False, default=list)
    service_metadata = serializers.JSONField(required=False, default=None)
    interval = serializers.JSONField(required=False, default=None)
    ttl = serializers.JSONField(required=False, default=None)
    deregister_after = serializers.JSONField(required=False, default=None)


class BatchHeartbeatInput(serializers.Serializer):
    nodes = serializers.ListField(child=serializers.CharField(max_length=200), max_length=10_000)


class DocumentNodeOutput(serializers.Serializer):
    """A node as a service document lists it (``discovery_app.selectors.node_summary``)."""

    id = serializers.CharField()
    address = serializers.CharField()
    port = serializers.IntegerField()
    metadata = serializers.DictField()
    status = serializers.CharField()
    interval = serializers.IntegerField()
    ttl = serializers.IntegerField()
    registered = serializers.CharField()


class NodeOutput(DocumentNodeOutput):
    """A node on its own: its summary, with its service, endpoints and heartbeat state."""

    service = serializers.CharField()
    version = serializers.CharField()
    endpoints = serializers.ListField()
    deregister_after = serializers.IntegerField()
    last_heartbeat = serializers.CharField()
    critical_since = serializers.CharField(allow_null=True)


class ResultOutput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["create", "update", "delete"])
    service = serializers.CharField()
    version = serializers.CharField()
    node = serializers.DictField()
    reason = serializers.CharField()
    timestamp = serializers.DateTimeField()
    index = serializers.IntegerField()


class ServiceSummaryOutput(serializers.Serializer):
    name = serializers.CharField()
    index = serializers.IntegerField()
    nodes = serializers.IntegerField()
    passing = serializers.IntegerField()
    versions = serializers.ListField()


class HeartbeatOutput(serializers.Serializer):
    id = serializers.CharField()
    service = serializers.CharField()
    ttl = serializers.IntegerField()
    renewed = serializers.CharField()


class HeartbeatsOutput(serializers.Serializer):
    renewed = serializers.ListField(child=serializers.CharField())
    not_registered = serializers.ListField(child=serializers.CharField())
    denied = serializers.ListField(child=serializers.CharField())


class RegistryStateOutput(serializers.Serializer):
    degraded = serializers.BooleanField(help_text="True while expiry is suspended (the safety valve).")
    degraded_state = serializers.DictField(allow_null=True, help_text="since, held, total, share")
    services = serializers.IntegerField()
    nodes = serializers.IntegerField()
    passing = serializers.IntegerField()


class DocumentVersionOutput(serializers.Serializer):
    version = serializers.CharField()
    metadata = serializers.JSONField()
    endpoints = serializers.ListField()
    nodes = DocumentNodeOutput(many=True)


class ServiceDocumentOutput(serializers.Serializer):
    """A service's document (``discovery_app.selectors.service_document``), served as cached."""

    name = serializers.CharField()
    index = serializers.IntegerField(help_text="Grows with every change; block on it with ?index=N.")
    versions = DocumentVersionOutput(many=True)
