"""OTLP/HTTP ``POST /v1/traces``: the stock exporter, protobuf and JSON, partial success, errors."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.trace_app.conftest import NOW_US, hex_id, otlp_request, post_otlp, post_zipkin, zipkin_span
from trace_app.models import Span


def test_the_stock_opentelemetry_exporter__sends_spans_the_zipkin_api_then_finds(
    live_server, issue_token, client
):
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    token = issue_token("trace:write", "trace:read")
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop.tests", "1.2")
    with tracer.start_as_current_span("POST /orders", kind=trace.SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "POST")
        with tracer.start_as_current_span("charge card", kind=trace.SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "payments")
            child.add_event("retry", {"attempt": 2})
            child.set_status(trace.Status(trace.StatusCode.ERROR, "declined"))
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    stored = {s.name: s for s in Span.objects.filter(trace_id=trace_id)}
    assert set(stored) == {"POST /orders", "charge card"}
    charge = stored["charge card"]
    assert charge.service == "checkout" and charge.kind == "CLIENT" and charge.error
    assert charge.parent_id == stored["POST /orders"].span_id
    assert charge.remote_service == "payments"
    assert charge.tags["error"] == "declined" and charge.tags["otel.status_code"] == "ERROR"
    assert charge.annotations[0]["value"] == "retry" and charge.annotations[0]["attributes"] == {
        "attempt": "2"
    }
    assert charge.scope == {"name": "shop.tests", "version": "1.2"}
    assert charge.resource["service.name"] == "checkout"

    answer = client.get(f"/api/v2/trace/{trace_id}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200
    assert {s["name"] for s in answer.json()} == {"POST /orders", "charge card"}


def test_the_requests_instrumentation__its_client_span_names_the_peer_by_the_urls_host(
    live_server, issue_token
):
    import requests
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    token = issue_token("trace:write")
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces", headers={"Authorization": f"Bearer {token}"}
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    RequestsInstrumentor().instrument(tracer_provider=provider)
    try:
        with provider.get_tracer("shop").start_as_current_span(
            "GET /cart", kind=trace.SpanKind.SERVER
        ) as root:
            requests.get(f"{live_server.url}/healthz", timeout=5)  # a peer that reports no spans
    finally:
        RequestsInstrumentor().uninstrument()
        provider.shutdown()

    (call,) = Span.objects.filter(trace_id=format(root.get_span_context().trace_id, "032x"), kind="CLIENT")
    assert call.remote_service == live_server.url.split("//")[1].split(":")[0]  # the host of http.url


def test_protobuf__200_with_partial_success_unset(writer):
    trace = hex_id(16)
    answer = post_otlp(writer, otlp_request([{"trace": trace, "span": hex_id(8)}]))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
    assert Span.objects.filter(trace_id=trace).count() == 1


def test_gzip_body__is_read(writer):
    trace = hex_id(16)
    body = gzip.compress(otlp_request([{"trace": trace, "span": hex_id(8)}]).SerializeToString())
    answer = writer.post(
        "/v1/traces", data=body, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
    )
    assert answer.status_code == 200
    assert Span.objects.filter(trace_id=trace).exists()


def test_bad_spans__are_refused_with_partial_success_and_the_rest_stored(writer):
    trace = hex_id(16)
    request = otlp_request(
        [
            {"trace": trace, "span": hex_id(8)},
            {"trace": "00" * 16, "span": hex_id(8)},  # all-zero trace id
            {"trace": trace, "span": hex_id(8), "start_us": NOW_US // 1000},  # milliseconds given
        ]
    )
    answer = post_otlp(writer, request)
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2
    assert "all zeros" in partial.error_message and "before 2000" in partial.error_message
    assert "startTimeUnixNano" in partial.error_message  # OTLP's field and unit, not Zipkin's
    assert "given for nanoseconds" in partial.error_message
    assert Span.objects.filter(trace_id=trace).count() == 1


def test_json__hex_ids_integer_enums_int64_strings_unknown_fields(writer):
    trace, span = hex_id(16), hex_id(8)
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
                "someFutureField": {"x": 1},
                "scopeSpans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "traceId": trace,
                                "spanId": span,
                                "name": "add item",
                                "kind": 2,
                                "startTimeUnixNano": str(NOW_US * 1000),
                                "endTimeUnixNano": str(NOW_US * 1000 + 5_000_000),
                                "attributes": [
                                    {"key": "items", "value": {"intValue": "3"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                ],
                                "status": {"code": 1},
                                "unknown": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    answer = writer.post("/v1/traces", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert answer.json() == {}
    stored = Span.objects.get(trace_id=trace)
    assert (stored.service, stored.kind, stored.duration) == ("cart", "SERVER", 5000)
    assert stored.tags["items"] == "3" and stored.tags["ok"] == "true" and not stored.error


def test_json_partial_success__int64_as_a_string(writer):
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": hex_id(8)}]}]}]}
    answer = writer.post("/v1/traces", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "1"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff", "application/x-protobuf"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"resourceSpans": [5]}', "application/json"),
    ],
)
def test_undecodable__400_with_a_status_body_and_nothing_written(writer, body, content_type):
    before = Span.objects.count()
    answer = writer.post("/v1/traces", data=body, content_type=content_type)
    assert answer.status_code == 400
    if content_type == "application/json":
        assert answer.json()["code"] == 3 and answer.json()["message"]
    else:
        status = status_pb2.Status.FromString(answer.content)
        assert status.code == 3 and status.message
    assert Span.objects.count() == before


def test_unknown_content_type__415(writer):
    answer = writer.post("/v1/traces", data=b"x", content_type="text/plain")
    assert answer.status_code == 415


def test_past_the_limit__413_also_after_gunzip(writer, settings):
    settings.TRACE_MAX_BODY_BYTES = 1000
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8), "name": "x" * 2000}])
    assert post_otlp(writer, request).status_code == 413
    squeezed = gzip.compress(request.SerializeToString())
    assert len(squeezed) < 1000
    answer = writer.post(
        "/v1/traces", data=squeezed, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
    )
    assert answer.status_code == 413


def test_bad_gzip__400(writer):
    answer = writer.post(
        "/v1/traces", data=b"not gzip", content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
    )
    assert answer.status_code == 400


@pytest.mark.parametrize("cut", [10, 20, -8, -4], ids=["header only", "mid-stream", "no trailer", "no size"])
def test_truncated_gzip__400_nothing_stored(writer, cut):
    # zlib reads a cut stream without complaint: what it gives is not the whole body
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)} for _ in range(20)])
    squeezed = gzip.compress(request.SerializeToString())[:cut]
    answer = writer.post(
        "/v1/traces", data=squeezed, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
    )
    assert answer.status_code == 400
    assert status_pb2.Status.FromString(answer.content).code == 3
    assert not Span.objects.exists()


def test_gzip_members__each_read_trailing_garbage_400(writer):
    first, second = ([{"trace": hex_id(16), "span": hex_id(8)}] for _ in range(2))
    members = gzip.compress(otlp_request(first).SerializeToString()) + gzip.compress(
        otlp_request(second).SerializeToString()
    )
    for data, status in ((members + b"junk", 400), (members, 200)):
        answer = writer.post(
            "/v1/traces", data=data, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="gzip"
        )
        assert answer.status_code == status
    assert Span.objects.count() == 2


def test_the_stock_exporter_with_deflate__its_spans_stored(live_server, issue_token):
    # OTEL_EXPORTER_OTLP_COMPRESSION=deflate: a 415 made the exporter drop every batch
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {issue_token('trace:write')}"},
        compression=Compression.Deflate,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "squeezed"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests").start_as_current_span("GET /"):
        pass
    provider.shutdown()
    assert list(Span.objects.values_list("service", "name")) == [("squeezed", "GET /")]


def test_deflate_cut_short_or_followed_by_bytes__400(writer):
    squeezed = zlib.compress(otlp_request([{"trace": hex_id(16), "span": hex_id(8)}]).SerializeToString())
    for data in (squeezed[:-2], squeezed + b"junk"):
        answer = writer.post(
            "/v1/traces", data=data, content_type="application/x-protobuf", HTTP_CONTENT_ENCODING="deflate"
        )
        assert answer.status_code == 400
    assert not Span.objects.exists()


def test_refusals__401_without_a_token_403_without_the_scope(client, api_client):
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    assert post_otlp(client, request).status_code == 401
    answer = post_otlp(api_client("trace:read"), request)
    assert answer.status_code == 403
    assert status_pb2.Status.FromString(answer.content).code == 7
    assert not Span.objects.exists()


def test_database_unavailable__503_with_retry_after(writer, monkeypatch):
    from django.db import OperationalError

    from trace_app import ingest_views

    def down(spans):
        raise OperationalError("connection refused")

    monkeypatch.setattr(ingest_views, "ingest_spans", down)
    answer = post_otlp(writer, otlp_request([{"trace": hex_id(16), "span": hex_id(8)}]))
    assert answer.status_code == 503 and answer["Retry-After"] == "5"


def test_a_batch_the_database_refused__its_names_are_recorded_when_sent_again(writer, reader, monkeypatch):
    from django.db import OperationalError

    from trace_app.store.sql import SqlStore

    write = SqlStore.write

    def down_once(self, spans):
        monkeypatch.setattr(SqlStore, "write", write)
        raise OperationalError("database is locked")

    monkeypatch.setattr(SqlStore, "write", down_once)
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8), "name": "GET /late"}], service="late")
    assert post_otlp(writer, request).status_code == 503
    assert post_otlp(writer, request).status_code == 200  # the exporter's retry
    assert reader.get("/api/v2/services").json() == ["late"]
    assert reader.get("/api/v2/spans", {"serviceName": "late"}).json() == ["GET /late"]


def test_over_the_callers_rate__429_with_retry_after_in_a_status(writer, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    answers = [post_otlp(writer, request) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2]["Retry-After"]) > 0
    assert status_pb2.Status.FromString(answers[2].content).code == 8


def test_any_service_name__has_a_resource_a_rule_can_match(writer, reader, ruled_client):
    # OpenTelemetry service names may hold any character: spaces, accents, colons
    names = ["checkout service", "café", "api:v2"]
    trace = hex_id(16)
    answer = post_zipkin(writer, [zipkin_span(trace, hex_id(8), name) for name in names])
    assert answer.status_code == 202, answer.content
    assert sorted(Span.objects.values_list("service", flat=True)) == sorted(names)
    found = reader.get("/api/v1/trace/traces/", {"service": "checkout service"}).json()["traces"]
    assert [t["trace_id"] for t in found] == [trace]
    # a rule names each by its resource, the characters a resource cannot hold as "_"
    deny = {"resource": "trace:checkout_service", "action": "write", "effect": "deny", "priority": 10}
    exporter = ruled_client("trace:write", rules=[{"resource": "trace:*", "action": "write"}, deny])
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}], service="checkout service")
    refused = ExportTraceServiceResponse.FromString(post_otlp(exporter, request).content)
    assert refused.partial_success.rejected_spans == 1
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}], service="café")
    assert post_otlp(exporter, request).status_code == 200
    assert Span.objects.filter(service="café").count() == 2


def _json_request(spans, scope=None, service_value=None):
    service = service_value if service_value is not None else {"stringValue": "cart"}
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": service}]},
                "scopeSpans": [{"scope": scope or {"name": "lib"}, "spans": spans}],
            }
        ]
    }


def _post_json(client, body):
    return client.post("/v1/traces", data=json.dumps(body), content_type="application/json")


def _json_span(**fields):
    span = {
        "traceId": hex_id(16),
        "spanId": hex_id(8),
        "name": "op",
        "startTimeUnixNano": str(NOW_US * 1000),
        "endTimeUnixNano": str(NOW_US * 1000 + 1000),
    }
    span.update(fields)
    return span


def test_json_nulls__are_the_fields_defaults_not_the_text_none(writer):
    span = _json_span(
        name=None,
        status={"code": 2, "message": None},
        events=[{"timeUnixNano": str(NOW_US * 1000), "name": None}],
    )
    body = _json_request([span], scope={"name": None, "version": None}, service_value={"stringValue": None})
    answer = writer.post("/v1/traces", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {}
    stored = Span.objects.get(trace_id=span["traceId"])
    assert stored.name == "" and stored.service == "unknown_service"
    assert stored.tags["error"] == "" and "otel.scope.name" not in stored.tags
    assert stored.annotations[0]["value"] == "" and stored.scope == {}


@pytest.mark.parametrize("name", [5, ["a", {"b": 1}], {"a": 1}, True])
def test_json_a_name_not_a_string__refuses_its_span(writer, name):
    kept, bad = _json_span(), _json_span(name=name)
    answer = writer.post(
        "/v1/traces", data=json.dumps(_json_request([kept, bad])), content_type="application/json"
    )
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"] == {"rejectedSpans": "1", "errorMessage": "name is not a string"}
    assert Span.objects.filter(trace_id=kept["traceId"]).exists()
    assert not Span.objects.filter(trace_id=bad["traceId"]).exists()


def test_links__malformed_ids_refuse_the_span_empty_ones_are_kept_empty(writer):
    target_trace, target_span = hex_id(16), hex_id(8)
    good = _json_span(
        links=[
            {"traceId": target_trace.upper(), "spanId": target_span},
            {"traceId": "", "spanId": "0" * 16, "attributes": [{"key": "k", "value": {"stringValue": "v"}}]},
        ]
    )
    bad = [
        _json_span(links=[link])
        for link in ({"traceId": "zz", "spanId": None}, {"traceId": 5}, {"spanId": "x"})
    ]
    answer = writer.post(
        "/v1/traces", data=json.dumps(_json_request([good, *bad])), content_type="application/json"
    )
    assert answer.json()["partialSuccess"]["rejectedSpans"] == "3"
    assert Span.objects.get(trace_id=good["traceId"]).links == [
        {"trace_id": target_trace, "span_id": target_span},
        {"trace_id": "", "span_id": "", "attributes": {"k": "v"}},
    ]
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    request.resource_spans[0].scope_spans[0].spans[0].links.add(trace_id=b"\x01\x02", span_id=b"\x03")
    answer = post_otlp(writer, request)
    assert ExportTraceServiceResponse.FromString(answer.content).partial_success.rejected_spans == 1


def test_bytes_attribute__the_same_tag_from_protobuf_and_json(writer):
    # protobuf stored its hex ("0001ff"), JSON the base64 it carries ("AAH/")
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="raw").value.bytes_value = b"\x00\x01\xff"
    assert post_otlp(writer, request).status_code == 200
    as_json = _json_span(attributes=[{"key": "raw", "value": {"bytesValue": "AAH/"}}])
    assert _post_json(writer, _json_request([as_json])).status_code == 200
    from_protobuf = Span.objects.get(trace_id=span.trace_id.hex()).tags["raw"]
    assert from_protobuf == Span.objects.get(trace_id=as_json["traceId"]).tags["raw"] == "AAH/"


def test_double_attribute__the_same_tag_from_protobuf_and_json(writer):
    # JSON's 1 was "1" where protobuf's 1.0 was "1.0"; NaN "NaN" against "nan"
    doubles = {
        "one": (1, 1.0),
        "half": ("0.5", 0.5),
        "nan": ("NaN", float("nan")),
        "inf": ("-Infinity", -1e999),
    }
    request = otlp_request([{"trace": hex_id(16), "span": hex_id(8)}])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    for key, (_, number) in doubles.items():
        span.attributes.add(key=key).value.double_value = number
    span.attributes.add(key="list").value.array_value.values.add().double_value = 2.0
    assert post_otlp(writer, request).status_code == 200
    attributes = [{"key": key, "value": {"doubleValue": given}} for key, (given, _) in doubles.items()]
    attributes.append({"key": "list", "value": {"arrayValue": {"values": [{"doubleValue": 2}]}}})
    as_json = _json_span(attributes=attributes)
    assert _post_json(writer, _json_request([as_json])).status_code == 200
    from_protobuf = Span.objects.get(trace_id=span.trace_id.hex()).tags
    from_json = Span.objects.get(trace_id=as_json["traceId"]).tags
    assert {key: from_protobuf[key] for key in [*doubles, "list"]} == {
        key: from_json[key] for key in [*doubles, "list"]
    }
    assert from_json["one"] == "1.0" and from_json["nan"] == "NaN" and from_json["inf"] == "-Infinity"
    assert from_json["list"] == "[2.0]"
    not_a_number = _json_span(attributes=[{"key": "d", "value": {"doubleValue": "many"}}])
    answer = _post_json(writer, _json_request([not_a_number]))
    assert "doubleValue 'many' is not a number" in answer.json()["partialSuccess"]["errorMessage"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"stringValue": 5}, "stringValue 5 is not a string"),
        ({"stringValue": {"a": 1}}, "stringValue {'a': 1} is not a string"),
        ({"boolValue": "yes"}, "boolValue 'yes' is not true or false"),
        ({"bytesValue": "!!!"}, "bytesValue '!!!' is not base64"),
        ({"bytesValue": 7}, "bytesValue 7 is not base64"),
    ],
)
def test_json_value_of_the_wrong_type__refuses_its_span(writer, value, message):
    # they were kept as their text: a number as its digits, "!!!" as bytes
    answer = _post_json(writer, _json_request([_json_span(attributes=[{"key": "k", "value": value}])]))
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert not Span.objects.exists()


def test_json_bytes_url_safe_or_unpadded__the_protobuf_tag(writer):
    as_json = _json_span(attributes=[{"key": "raw", "value": {"bytesValue": "AAH_"}}])
    assert _post_json(writer, _json_request([as_json])).status_code == 200
    assert Span.objects.get().tags["raw"] == "AAH/"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"startTimeUnixNano": str(2**64)},
            "startTimeUnixNano 18446744073709551616 is not an unsigned 64-bit",
        ),
        ({"attributes": [{"key": "n", "value": {"intValue": str(2**70)}}]}, "is not a 64-bit integer"),
    ],
)
def test_json_integers_beyond_64_bits__refuse_the_span_saying_so(writer, fields, message):
    # a start past 2^64 was "a span ends before it starts"; an intValue of 2^70 was kept as text
    answer = _post_json(writer, _json_request([_json_span(**fields)]))
    assert message in answer.json()["partialSuccess"]["errorMessage"]
    assert not Span.objects.exists()
