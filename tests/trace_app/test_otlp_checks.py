"""OTLP checks both encodings share: ids, times, lengths, and OTLP/JSON's shape."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.trace_app.conftest import NOW_US, hex_id, otlp_request, post_otlp
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


@pytest.mark.parametrize(
    ("time_unix_nano", "message"),
    [
        ("1", "an event's timeUnixNano 1 is before 2000-01-01"),  # was stored at timestamp 0
        (None, "an event's timeUnixNano 0 is before 2000-01-01"),
        (str(NOW_US), "given for nanoseconds?"),  # microseconds
        (str((NOW_US + 2 * 86_400_000_000) * 1000), "is more than a day in the future"),
    ],
)
def test_json_an_event_at_an_implausible_time__refuses_its_span(writer, time_unix_nano, message):
    kept = _json_span(events=[{"timeUnixNano": str(NOW_US * 1000), "name": "ok"}])
    bad = _json_span(events=[{"timeUnixNano": time_unix_nano, "name": "e"}])
    answer = _post_json(writer, _json_request([kept, bad]))
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert list(Span.objects.values_list("trace_id", flat=True)) == [kept["traceId"]]


def test_protobuf_an_event_before_2000__refuses_its_span(writer):
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    request.resource_spans[0].scope_spans[0].spans[0].events.add(time_unix_nano=1, name="e")
    partial = ExportTraceServiceResponse.FromString(post_otlp(writer, request).content).partial_success
    assert partial.rejected_spans == 1 and "timeUnixNano 1 is before 2000-01-01" in partial.error_message
    assert not Span.objects.exists()


def test_long_scope_and_attribute_keys__cut_as_tag_keys_are(writer):
    # the scope's name and version (and its otel.scope.name tag) were kept at 5,000 characters,
    # events', links' and the resource's attribute keys at 400; a NUL stayed in the scope's tag
    long_key = [{"key": "k" * 400, "value": {"stringValue": "v"}}]
    span = _json_span(
        events=[{"timeUnixNano": str(NOW_US * 1000), "name": "e", "attributes": long_key}],
        links=[{"traceId": hex_id(16), "spanId": hex_id(8), "attributes": long_key}],
    )
    body = _json_request([span], scope={"name": "n\x00" + "n" * 5000, "version": "v" * 5000})
    body["resourceSpans"][0]["resource"]["attributes"] += long_key
    assert _post_json(writer, body).json() == {}
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    request.resource_spans[0].scope_spans[0].scope.name = "n\x00" + "n" * 5000
    request.resource_spans[0].scope_spans[0].scope.version = "v" * 5000
    event = request.resource_spans[0].scope_spans[0].spans[0].events.add(time_unix_nano=NOW_US * 1000)
    event.attributes.add(key="k" * 400).value.string_value = "v"
    assert post_otlp(writer, request).status_code == 200
    for stored in Span.objects.all():
        assert stored.scope == {"name": "n" * 254, "version": "v" * 255}  # cut, then the NUL dropped
        assert stored.tags["otel.scope.name"] == "n" * 254
        assert stored.annotations[0]["attributes"] == {"k" * 255: "v"}
    json_span = Span.objects.get(trace_id=span["traceId"])
    assert json_span.links[0]["attributes"] == {"k" * 255: "v"}
    assert "k" * 255 in json_span.resource and "k" * 400 not in json_span.resource


def test_scope_attributes__kept_in_either_encoding(writer):
    # only the scope's name and version were kept
    attributes = [
        {"key": "library.kind", "value": {"stringValue": "http"}},
        {"key": "n", "value": {"intValue": "3"}},
    ]
    span = _json_span()
    assert (
        _post_json(writer, _json_request([span], scope={"name": "lib", "attributes": attributes})).json()
        == {}
    )
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    scope = request.resource_spans[0].scope_spans[0].scope
    scope.name = "lib"
    scope.attributes.add(key="library.kind").value.string_value = "http"
    scope.attributes.add(key="n").value.int_value = 3
    assert post_otlp(writer, request).status_code == 200
    stored = [s.scope for s in Span.objects.all()]
    assert stored == [{"name": "lib", "attributes": {"library.kind": "http", "n": "3"}}] * 2


@pytest.mark.parametrize(
    "body",
    [
        _json_request(
            [_json_span()], scope={"name": "lib", "attributes": [{"key": "n", "value": {"intValue": "x"}}]}
        ),
        _json_request([_json_span()], scope={"name": "lib", "attributes": 5}),
        {"resourceSpans": {}},  # was 200, storing nothing, where {"a": 1} was a 400
        {"resourceSpans": ""},
        {"resourceSpans": [{"resource": 5}]},
        {"resourceSpans": [{"resource": {"attributes": ""}}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]},
        _json_request([_json_span()], service_value={"stringValue": "cart", "intValue": "1"}),
    ],
)
def test_json_a_malformed_request__400_as_protobufs_json_parser_refuses_it(writer, body):
    answer = _post_json(writer, body)
    assert answer.status_code == 400 and answer.json()["code"] == 3
    assert not Span.objects.exists()


def test_json_null_resource_spans__an_empty_request(writer):
    assert _post_json(writer, {"resourceSpans": None}).json() == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"stringValue": "x", "intValue": "1"}, "an AnyValue sets stringValue and intValue, not one value"),
        ({"stringValue": "x", "string_value": "y"}, "sets stringValue and string_value"),
        ("x", "an attribute's value 'x' is not an AnyValue object"),
        ({"arrayValue": 5}, "arrayValue is not an object"),
        ({"arrayValue": {"values": {}}}, "values is not a list"),
    ],
)
def test_json_an_attribute_value_with_two_fields_or_none__refuses_its_span(writer, value, message):
    # the string was taken and the int dropped; a bare "x" was kept as if it were an AnyValue
    answer = _post_json(writer, _json_request([_json_span(attributes=[{"key": "k", "value": value}])]))
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert not Span.objects.exists()


def test_json_a_null_field_of_an_any_value__is_not_set_as_in_protobuf(writer):
    value = {"stringValue": None, "intValue": "1"}  # protobuf's parser takes the int: "" was kept
    span = _json_span(attributes=[{"key": "k", "value": value}])
    assert _post_json(writer, _json_request([span])).json() == {}
    assert Span.objects.get().tags["k"] == "1"


def test_protobuf_string_attributes__cut_and_cleaned_as_json_ones_are(writer):
    # a protobuf string value was kept whole (5,000 characters) and with its NUL, which
    # PostgreSQL's jsonb cannot store; JSON's went through text()
    long, nul = "x" * 5000, "a\x00b"
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8), "attrs": {"long": long, "nul": nul}}])
    request.resource_spans[0].resource.attributes.add(key="long").value.string_value = long
    event = request.resource_spans[0].scope_spans[0].spans[0].events.add(time_unix_nano=NOW_US * 1000)
    event.attributes.add(key="nul").value.string_value = nul
    assert post_otlp(writer, request).status_code == 200
    stored = Span.objects.get()
    assert (stored.tags["long"], stored.tags["nul"]) == ("x" * 4096, "ab")
    assert stored.resource["long"] == "x" * 4096
    assert stored.annotations[0]["attributes"] == {"nul": "ab"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"flags": "x"}, "flags is not an integer"),
        ({"flags": 2**32}, "flags 4294967296 is not an unsigned 32-bit integer"),
        ({"droppedAttributesCount": -1}, "droppedAttributesCount -1 is not an unsigned 32-bit integer"),
        ({"dropped_events_count": True}, "droppedEventsCount is not an integer"),
        ({"droppedLinksCount": 1.5}, "droppedLinksCount is not an integer"),
        ({"traceState": 5}, "traceState is not a string"),
        (
            {"events": [{"timeUnixNano": str(NOW_US * 1000), "droppedAttributesCount": "-1"}]},
            "an event's droppedAttributesCount -1 is not",
        ),
        ({"links": [{"traceId": hex_id(16), "spanId": hex_id(8), "traceState": []}]}, "a link's traceState"),
        ({"links": [{"traceId": hex_id(16), "spanId": hex_id(8), "flags": "x"}]}, "a link's flags"),
    ],
)
def test_json_fields_not_kept_of_the_wrong_type__refuse_their_span(writer, fields, message):
    # accepted as if absent: protobuf's JSON parser refuses them, as any bad field of a span here
    kept, bad = _json_span(flags=257, traceState="k=v", droppedAttributesCount="2"), _json_span(**fields)
    answer = _post_json(writer, _json_request([kept, bad]))
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert list(Span.objects.values_list("trace_id", flat=True)) == [kept["traceId"]]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"traceId": "z" * 32},
            "traceId 'zzz" + "z" * 29 + "' is not 32 hex characters (16 bytes; either case)",
        ),
        ({"spanId": "Z" * 16}, "spanId 'ZZZZZZZZZZZZZZZZ' is not 16 hex characters (8 bytes; either case)"),
        ({"parentSpanId": "abc"}, "parentSpanId 'abc' is not 16 hex characters (8 bytes; either case)"),
    ],
)
def test_json_a_bad_id__the_message_says_what_otlp_takes(writer, fields, message):
    # was "trace id ... is not 16 or 32 lower-hex characters": Zipkin's rule, not OTLP's
    answer = _post_json(writer, _json_request([_json_span(**fields)]))
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert "lower-hex" not in answer.json()["partialSuccess"]["errorMessage"]


def test_json_ids_in_upper_case__stored_in_lower_case(writer):
    trace, span, parent = hex_id(16), hex_id(8), hex_id(8)
    upper = _json_span(traceId=trace.upper(), spanId=span.upper(), parentSpanId=parent.upper())
    assert _post_json(writer, _json_request([upper])).status_code == 200
    assert list(Span.objects.values_list("trace_id", "span_id", "parent_id")) == [(trace, span, parent)]
