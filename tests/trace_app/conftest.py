"""Fixtures of the trace tests: callers with the trace scopes, span builders for each format."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

NOW_US = int(time.time() * 1_000_000)


@pytest.fixture
def writer(api_client):
    return api_client("trace:write")


@pytest.fixture
def reader(api_client):
    return api_client("trace:read")


def hex_id(size: int) -> str:
    return os.urandom(size).hex()


def otlp_request(spans: list[dict[str, Any]], service: str = "shop") -> ExportTraceServiceRequest:
    """An OTLP request with ``spans`` ({trace, span, parent, name, kind, start_us, duration_us, attrs})."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add(key="service.name")
    attribute.value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    for item in spans:
        span = scope_spans.spans.add()
        span.trace_id = bytes.fromhex(item["trace"])
        span.span_id = bytes.fromhex(item["span"])
        if item.get("parent"):
            span.parent_span_id = bytes.fromhex(item["parent"])
        span.name = item.get("name", "op")
        span.kind = item.get("kind", 2)
        start = item.get("start_us", NOW_US) * 1000
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + item.get("duration_us", 1000) * 1000
        for key, value in item.get("attrs", {}).items():
            span.attributes.add(key=key).value.string_value = value
        if item.get("error"):
            span.status.code = 2
            span.status.message = "boom"
    return request


def zipkin_span(trace: str, span: str, service: str, **fields: Any) -> dict[str, Any]:
    out = {
        "traceId": trace,
        "id": span,
        "name": fields.pop("name", "get"),
        "timestamp": fields.pop("timestamp", NOW_US),
        "duration": fields.pop("duration", 1000),
        "localEndpoint": {"serviceName": service},
    }
    out.update(fields)
    return out


def post_zipkin(client, spans: list[dict[str, Any]]):
    return client.post("/api/v2/spans", data=json.dumps(spans), content_type="application/json")


def post_otlp(client, request: ExportTraceServiceRequest, **extra: Any):
    return client.post(
        "/v1/traces", data=request.SerializeToString(), content_type="application/x-protobuf", **extra
    )
