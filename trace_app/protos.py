"""Protobuf messages the trace service reads and writes besides OTLP's own (opentelemetry-proto):
Zipkin's ``ListOfSpans`` (zipkin.proto3, ``POST /api/v2/spans``) and ``google.rpc.Status`` (the
body of an OTLP error answer).  Built from their descriptors here, field numbers as published,
instead of shipping generated modules.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
OPTIONAL, REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _field(name: str, number: int, kind: int, label: int = OPTIONAL, type_name: str = "") -> _F:
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = type_name
    return field


def _zipkin_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="zipkin.proto", package="zipkin.proto3", syntax="proto3")
    endpoint = file.message_type.add(name="Endpoint")
    endpoint.field.extend(
        [
            _field("service_name", 1, _F.TYPE_STRING),
            _field("ipv4", 2, _F.TYPE_BYTES),
            _field("ipv6", 3, _F.TYPE_BYTES),
            _field("port", 4, _F.TYPE_INT32),
        ]
    )
    annotation = file.message_type.add(name="Annotation")
    annotation.field.extend([_field("timestamp", 1, _F.TYPE_FIXED64), _field("value", 2, _F.TYPE_STRING)])
    span = file.message_type.add(name="Span")
    kind = span.enum_type.add(name="Kind")
    for number, name in enumerate(("SPAN_KIND_UNSPECIFIED", "CLIENT", "SERVER", "PRODUCER", "CONSUMER")):
        kind.value.add(name=name, number=number)
    tags = span.nested_type.add(name="TagsEntry")
    tags.field.extend([_field("key", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_STRING)])
    tags.options.map_entry = True
    span.field.extend(
        [
            _field("trace_id", 1, _F.TYPE_BYTES),
            _field("parent_id", 2, _F.TYPE_BYTES),
            _field("id", 3, _F.TYPE_BYTES),
            _field("kind", 4, _F.TYPE_ENUM, type_name=".zipkin.proto3.Span.Kind"),
            _field("name", 5, _F.TYPE_STRING),
            _field("timestamp", 6, _F.TYPE_FIXED64),
            _field("duration", 7, _F.TYPE_UINT64),
            _field("local_endpoint", 8, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint"),
            _field("remote_endpoint", 9, _F.TYPE_MESSAGE, type_name=".zipkin.proto3.Endpoint"),
            _field("annotations", 10, _F.TYPE_MESSAGE, REPEATED, ".zipkin.proto3.Annotation"),
            _field("tags", 11, _F.TYPE_MESSAGE, REPEATED, ".zipkin.proto3.Span.TagsEntry"),
            _field("debug", 12, _F.TYPE_BOOL),
            _field("shared", 13, _F.TYPE_BOOL),
        ]
    )
    spans = file.message_type.add(name="ListOfSpans")
    spans.field.append(_field("spans", 1, _F.TYPE_MESSAGE, REPEATED, ".zipkin.proto3.Span"))
    return file


def _status_file() -> descriptor_pb2.FileDescriptorProto:
    """google.rpc.Status with its ``details`` (repeated google.protobuf.Any) left out: OTLP error
    answers carry none, and a reader skips the absent field."""
    file = descriptor_pb2.FileDescriptorProto(
        name="platform_rpc_status.proto", package="google.rpc", syntax="proto3"
    )
    status = file.message_type.add(name="Status")
    status.field.extend([_field("code", 1, _F.TYPE_INT32), _field("message", 2, _F.TYPE_STRING)])
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_zipkin_file())
_pool.Add(_status_file())
ListOfSpans = message_factory.GetMessageClass(_pool.FindMessageTypeByName("zipkin.proto3.ListOfSpans"))
ZipkinSpan = message_factory.GetMessageClass(_pool.FindMessageTypeByName("zipkin.proto3.Span"))
Status = message_factory.GetMessageClass(_pool.FindMessageTypeByName("google.rpc.Status"))
