"""OTLP checks both encodings share: ids, times, lengths, and OTLP/JSON's shape."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.trace_app.conftest import hex_id, otlp_request, post_otlp
from tests.trace_app.test_otlp import _json_request, _json_span, _post_json
from trace_app.models import Span


def test_json_a_64_bit_trace_id__refuses_its_span_as_protobuf_does(writer):
    # OTLP/JSON's traceId is 32 hex digits (16 bytes): a 16-digit one was stored padded
    kept, short = _json_span(), _json_span(traceId=hex_id(8))
    answer = _post_json(writer, _json_request([kept, short]))
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "is not 32 hex characters" in answer.json()["partialSuccess"]["errorMessage"]
    assert list(Span.objects.values_list("trace_id", flat=True)) == [kept["traceId"]]
    request = otlp_request([{"trace": hex_id(8).rjust(32, "0"), "span": hex_id(8)}])
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes.fromhex(hex_id(8))
    assert (
        ExportTraceServiceResponse.FromString(
            post_otlp(writer, request).content
        ).partial_success.rejected_spans
        == 1
    )


def test_a_links_64_bit_trace_id__refuses_its_span_in_either_encoding(writer):
    linked = _json_span(links=[{"traceId": hex_id(8), "spanId": hex_id(8)}])
    answer = _post_json(writer, _json_request([linked]))
    assert "link trace id" in answer.json()["partialSuccess"]["errorMessage"]
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    request.resource_spans[0].scope_spans[0].spans[0].links.add(
        trace_id=bytes.fromhex(hex_id(8)), span_id=bytes.fromhex(hex_id(8))
    )
    assert (
        ExportTraceServiceResponse.FromString(
            post_otlp(writer, request).content
        ).partial_success.rejected_spans
        == 1
    )
    assert not Span.objects.exists()
