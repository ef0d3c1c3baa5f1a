"""Zipkin v2: ingest (JSON with the stock exporter, protobuf ListOfSpans) and the query API."""

from __future__ import annotations

import json

import pytest

from tests.trace_app.conftest import NOW_US, hex_id, post_zipkin, zipkin_span
from trace_app.models import Span
from trace_app.protos import ListOfSpans


def test_the_stock_zipkin_exporter__spans_are_found(live_server, issue_token, client):
    from opentelemetry import trace
    from opentelemetry.exporter.zipkin.json import ZipkinExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    token = issue_token("trace:write", "trace:read")
    exporter = ZipkinExporter(endpoint=f"{live_server.url}/api/v2/spans")
    exporter.session.headers["Authorization"] = f"Bearer {token}"
    provider = TracerProvider(resource=Resource.create({"service.name": "frontend"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("GET /", kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("http.route", "/")
    provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    stored = Span.objects.get(trace_id=trace_id)
    assert (stored.service, stored.name, stored.kind, stored.tags["http.route"]) == (
        "frontend",
        "GET /",
        "SERVER",
        "/",
    )
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/api/v2/services", **auth).json() == ["frontend"]
    assert client.get("/api/v2/spans?serviceName=frontend", **auth).json() == ["GET /"]


def test_json_ingest__202_with_an_empty_body(writer):
    answer = post_zipkin(writer, [zipkin_span(hex_id(8), hex_id(8), "web")])
    assert answer.status_code == 202 and answer.content == b""


def test_protobuf_ingest(writer, reader):
    spans = ListOfSpans()
    span = spans.spans.add()
    span.trace_id, span.id = bytes.fromhex("00000000000000000000000000000abc"[16:]), bytes.fromhex(hex_id(8))
    span.name, span.kind, span.timestamp, span.duration = "query", 1, NOW_US, 250
    span.local_endpoint.service_name = "api"
    span.local_endpoint.ipv4 = bytes([10, 0, 0, 1])
    span.remote_endpoint.service_name = "postgres"
    span.tags["db.statement"] = "select 1"
    span.annotations.add(timestamp=NOW_US + 10, value="wire send")
    answer = writer.post(
        "/api/v2/spans", data=spans.SerializeToString(), content_type="application/x-protobuf"
    )
    assert answer.status_code == 202
    stored = Span.objects.get(name="query")
    assert stored.trace_id == "0000000000000000" + "0000000000000abc"
    assert stored.local_endpoint == {"ipv4": "10.0.0.1"} and stored.remote_service == "postgres"
    got = reader.get("/api/v2/trace/0000000000000abc").json()
    assert got[0]["traceId"] == "0000000000000abc"
    assert got[0]["annotations"] == [{"timestamp": NOW_US + 10, "value": "wire send"}]


def test_protobuf_ingest__an_unknown_kind__400_as_in_json(writer):
    spans = ListOfSpans()
    for kind in (2, 9):
        span = spans.spans.add(trace_id=bytes.fromhex(hex_id(16)), id=bytes.fromhex(hex_id(8)), kind=kind)
        span.timestamp, span.duration, span.local_endpoint.service_name = NOW_US, 5, "api"
    answer = writer.post(
        "/api/v2/spans", data=spans.SerializeToString(), content_type="application/x-protobuf"
    )
    assert answer.status_code == 400 and "kind 9" in answer.json()["error"]["message"]
    assert not Span.objects.exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"traceId": "ABCDEF0123456789"},  # upper case
        {"traceId": "abc"},
        {"traceId": "0" * 16},
        {"id": "0" * 16},
        {"duration": -5},
        {"duration": 2**63},  # beyond what a database column holds
        {"duration": 11 * 365 * 24 * 3600 * 1_000_000},  # eleven years: nanoseconds given
        {"timestamp": NOW_US // 1000},  # milliseconds
        {"kind": "SIDEWAYS"},
        {"tags": {"k": {"nested": 1}}},
        {"localEndpoint": {"serviceName": "x", "ipv4": "999.1.1.1"}},
        {"shared": "yes"},  # was read as false: the server half no longer merged with its client's
        {"shared": 1},
        {"debug": "true"},
        {"annotations": [{"timestamp": -5, "value": "x"}]},  # was stored: checked as the span's start
        {"annotations": [{"timestamp": NOW_US // 1000, "value": "x"}]},  # milliseconds
        {"annotations": [{"timestamp": NOW_US * 1000, "value": "x"}]},  # nanoseconds
    ],
)
def test_bad_span__400_and_nothing_of_the_request_stored(writer, bad):
    good = zipkin_span(hex_id(8), hex_id(8), "web")
    broken = {**zipkin_span(hex_id(8), hex_id(8), "web"), **bad}
    answer = post_zipkin(writer, [good, broken])
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "undecodable"
    assert not Span.objects.exists()


def test_protobuf_an_annotation_before_2000__400_as_in_json(writer):
    spans = ListOfSpans()
    span = spans.spans.add(trace_id=bytes.fromhex(hex_id(8)), id=bytes.fromhex(hex_id(8)))
    span.timestamp, span.duration, span.local_endpoint.service_name = NOW_US, 5, "api"
    span.annotations.add(timestamp=1, value="x")
    answer = writer.post(
        "/api/v2/spans", data=spans.SerializeToString(), content_type="application/x-protobuf"
    )
    assert answer.status_code == 400
    assert "annotation's timestamp 1 is before 2000-01-01" in answer.json()["error"]["message"]
    assert not Span.objects.exists()


def test_a_span_without_timestamp__starts_at_its_earliest_annotation_or_is_skipped(writer):
    # Zipkin's model allows it ("possibly absent if incomplete": a late fragment, a lost start
    # event); a 400 made the reporter drop the whole batch, good spans with it
    good = zipkin_span(hex_id(8), hex_id(8), "web")
    late = zipkin_span(hex_id(8), hex_id(8), "web", name="late")
    late["annotations"] = [{"timestamp": NOW_US + 9, "value": "b"}, {"timestamp": NOW_US + 5, "value": "a"}]
    del late["timestamp"]
    bare = {**zipkin_span(hex_id(8), hex_id(8), "web", name="bare"), "timestamp": None}
    assert post_zipkin(writer, [good, late, bare]).status_code == 202
    assert Span.objects.get(name="late").timestamp == NOW_US + 5
    assert Span.objects.count() == 2  # the fragment with nothing to place it in time is skipped

    spans = ListOfSpans()
    fragment = spans.spans.add()  # protobuf: timestamp left at 0, which proto3 means unset
    fragment.trace_id, fragment.id, fragment.name = bytes.fromhex(hex_id(8)), bytes.fromhex(hex_id(8)), "pb"
    fragment.annotations.add(timestamp=NOW_US + 7, value="x")
    lost = spans.spans.add()
    lost.trace_id, lost.id = bytes.fromhex(hex_id(8)), bytes.fromhex(hex_id(8))
    answer = writer.post(
        "/api/v2/spans", data=spans.SerializeToString(), content_type="application/x-protobuf"
    )
    assert answer.status_code == 202
    assert Span.objects.get(name="pb").timestamp == NOW_US + 7
    assert Span.objects.count() == 3


def test_a_null_duration__is_no_duration_as_every_null_field(writer):
    # Zipkin reads a null field as an absent one: "duration": null was a 400 for the whole batch
    nulls = {"duration": None, "parentId": None, "kind": None, "tags": None, "annotations": None}
    answer = post_zipkin(writer, [{**zipkin_span(hex_id(8), hex_id(8), "web"), **nulls}])
    assert answer.status_code == 202, answer.content
    assert Span.objects.get().duration == 0


def test_a_span_without_timestamp__still_refused_when_otherwise_bad(writer):
    broken = {**zipkin_span(hex_id(8), "xyz", "web"), "timestamp": None}
    answer = post_zipkin(writer, [zipkin_span(hex_id(8), hex_id(8), "web"), broken])
    assert answer.status_code == 400 and not Span.objects.exists()


def test_lone_surrogates__stored_as_replacement_characters_and_every_read_answers(writer, reader):
    # JSON may spell a lone surrogate ("\ud800"), which no database stores as text: SQLite kept
    # it, and every read of the trace, and every Zipkin search listing it, then failed
    trace = hex_id(16)
    bad = "x\ud800y"
    span = zipkin_span(
        trace, hex_id(8), f"web{bad}", name=f"get {bad}", tags={bad: bad, "ok": "fine"},
        annotations=[{"timestamp": NOW_US + 1, "value": bad}],
        remoteEndpoint={"serviceName": f"db{bad}"},
    )  # fmt: skip

    assert post_zipkin(writer, [span]).status_code == 202

    (stored,) = Span.objects.filter(trace_id=trace)
    assert (stored.service, stored.name, stored.remote_service) == (
        "webx\ufffdy",
        "get x\ufffdy",
        "dbx\ufffdy",
    )
    assert stored.tags == {"x\ufffdy": "x\ufffdy", "ok": "fine"}
    assert stored.annotations[0]["value"] == "x\ufffdy"
    for path in (f"/api/v2/trace/{trace}", f"/api/v1/trace/traces/{trace}/", "/api/v2/traces"):
        assert reader.get(path).status_code == 200, path


def test_long_text__cut_as_documented(writer, reader):
    trace = hex_id(16)
    span = zipkin_span(trace, hex_id(8), "s" * 200, name="n" * 300, tags={"k" * 9000: "v" * 5000})
    post_zipkin(writer, [span])
    [stored] = reader.get(f"/api/v1/trace/traces/{trace}/").json()["spans"]
    assert (len(stored["service"]), len(stored["name"])) == (128, 255)
    assert {len(key): len(value) for key, value in stored["tags"].items()} == {255: 4096}  # the key was whole


def test_long_remote_service__cut_in_the_zipkin_answer_too(writer, reader):
    # the remote service's column was cut at 128, but remoteEndpoint kept the whole name, so the
    # Zipkin API answered a name no search or dependency link could match
    trace = hex_id(16)
    span = zipkin_span(trace, hex_id(8), "web", kind="CLIENT", remoteEndpoint={"serviceName": "r" * 300})
    assert post_zipkin(writer, [span]).status_code == 202
    [got] = reader.get(f"/api/v2/trace/{trace}").json()
    assert got["remoteEndpoint"] == {"serviceName": "r" * 128}


@pytest.mark.parametrize(
    ("body", "kind"), [(b"nope", "application/json"), (b"\x0a\xff", "application/x-protobuf")]
)
def test_undecodable__400(writer, body, kind):
    assert writer.post("/api/v2/spans", data=body, content_type=kind).status_code == 400


def test_refusals(client, reader, writer):
    spans = [zipkin_span(hex_id(8), hex_id(8), "web")]
    assert post_zipkin(client, spans).status_code == 401
    assert post_zipkin(reader, spans).status_code == 403
    assert writer.get("/api/v2/services").status_code == 403
    assert client.get("/api/v2/services").status_code == 401


@pytest.fixture
def rpc(writer):
    """A client/server pair sharing a span id (Zipkin's shared span), and a database call."""
    trace, root, call = hex_id(8), hex_id(8), hex_id(8)
    spans = [
        zipkin_span(
            trace, root, "frontend", name="get /", kind="SERVER", duration=10_000, tags={"http.method": "GET"}
        ),
        zipkin_span(
            trace,
            call,
            "frontend",
            name="get /api",
            kind="CLIENT",
            parentId=root,
            timestamp=NOW_US + 1000,
            duration=6000,
            remoteEndpoint={"serviceName": "backend"},
        ),
        zipkin_span(
            trace,
            call,
            "backend",
            name="get /api",
            kind="SERVER",
            parentId=root,
            shared=True,
            timestamp=NOW_US + 2000,
            duration=4000,
            annotations=[{"timestamp": NOW_US + 2500, "value": "cache miss"}],
        ),
    ]
    assert post_zipkin(writer, spans).status_code == 202
    db_call = zipkin_span(
        trace,
        hex_id(8),
        "backend",
        name="select",
        kind="CLIENT",
        parentId=call,
        timestamp=NOW_US + 2500,
        duration=1000,
        remoteEndpoint={"serviceName": "mysql"},
        tags={"error": "timeout"},
    )
    assert post_zipkin(writer, [db_call]).status_code == 202
    return trace


def test_query_api__services_span_names_remote_services(reader, rpc):
    assert reader.get("/api/v2/services").json() == ["backend", "frontend"]
    assert reader.get("/api/v2/spans?serviceName=frontend").json() == ["get /", "get /api"]
    assert reader.get("/api/v2/remoteServices?serviceName=frontend").json() == ["backend"]
    assert reader.get("/api/v2/spans").status_code == 400


def test_query_api__trace_by_either_id_form(reader, rpc):
    short = reader.get(f"/api/v2/trace/{rpc}")
    long = reader.get(f"/api/v2/trace/{rpc.rjust(32, '0')}")
    assert short.status_code == long.status_code == 200
    assert short.json() == long.json()
    assert {s["traceId"] for s in short.json()} == {rpc}
    halves = [s for s in short.json() if s["name"] == "get /api"]
    assert sorted(s["kind"] for s in halves) == ["CLIENT", "SERVER"]
    assert reader.get(f"/api/v2/trace/{hex_id(8)}").status_code == 404
    assert reader.get("/api/v2/trace/xyz").status_code == 400


def test_query_api__traces_filters(reader, rpc, writer):
    other = hex_id(8)
    post_zipkin(writer, [zipkin_span(other, hex_id(8), "frontend", name="get /health", duration=50)])

    def ids(query):
        answer = reader.get(f"/api/v2/traces?{query}")
        assert answer.status_code == 200, answer.content
        return {trace[0]["traceId"] for trace in answer.json()}

    assert ids("serviceName=frontend") == {rpc, other}
    assert ids("serviceName=backend&spanName=select") == {rpc}
    assert ids("serviceName=frontend&remoteServiceName=backend") == {rpc}
    assert ids("annotationQuery=http.method%3DGET") == {rpc}
    assert ids("annotationQuery=cache%20miss") == {rpc}
    assert ids("annotationQuery=error") == {rpc}
    assert ids("annotationQuery=http.method%3DGET%20and%20error") == set()  # one span must match both
    # a tag given twice: both values on one span, whatever the order (the last one alone counted)
    assert ids("annotationQuery=http.method%3DPOST%20and%20http.method%3DGET") == set()
    assert ids("annotationQuery=http.method%3DGET%20and%20http.method%3DPOST") == set()
    assert ids("annotationQuery=http.method%3DGET%20and%20http.method%3DGET") == {rpc}
    assert ids("minDuration=5000") == {rpc}
    assert ids("maxDuration=100") == {other}
    assert ids(f"endTs={NOW_US // 1000 - 60_000}&lookback=60000") == set()
    assert reader.get("/api/v2/traces?limit=abc").status_code == 400


def test_query_api__span_name_matches_in_any_case_as_zipkin_lower_cases_both(reader, writer):
    # Zipkin stores names lower-cased and lower-cases spanName: OpenTelemetry's "GET /Users" was
    # not found by spanName=get /users; its name is kept as sent (the trace shows it so)
    trace = hex_id(8)
    post_zipkin(writer, [zipkin_span(trace, hex_id(8), "api", name="GET /Users")])
    for name in ("get%20/users", "GET%20/USERS", "GET%20/Users", "ALL"):
        answer = reader.get(f"/api/v2/traces?serviceName=api&spanName={name}")
        assert [t[0]["name"] for t in answer.json()] == ["GET /Users"], name
    assert reader.get("/api/v2/traces?spanName=get%20/user").json() == []  # the whole name, no pattern
    assert reader.get("/api/v2/traces?spanName=get%20_users").json() == []
    assert reader.get("/api/v2/spans?serviceName=api").json() == ["GET /Users"]
    native = reader.get("/api/v1/trace/traces/?operation=get%20/users").json()  # OTel's names: exact
    assert native["traces"] == []


def test_query_api__trace_many(reader, rpc):
    got = reader.get(f"/api/v2/traceMany?traceIds={rpc},{hex_id(8)}")
    assert got.status_code == 200 and len(got.json()) == 1
    assert reader.get(f"/api/v2/traceMany?traceIds={rpc}").status_code == 400


@pytest.mark.parametrize(
    "form", [str, str.upper, lambda rpc: rpc.rjust(32, "0")], ids=["same", "upper", "32"]
)
def test_query_api__trace_many_names_one_trace_twice__400_as_zipkins_spec(reader, rpc, form):
    # "400: Less than two traceIds, or the list was redundant or malformed": it was answered once
    got = reader.get(f"/api/v2/traceMany?traceIds={rpc},{hex_id(8)},{form(rpc)}")
    assert (got.status_code, got.json()["error"]["details"]) == (400, {"parameter": "traceIds"})


@pytest.mark.parametrize("ids", ["{rpc},", ",{rpc}", "{rpc},,{other}"])
def test_query_api__trace_many_an_empty_id__400(reader, rpc, ids):
    got = reader.get("/api/v2/traceMany", {"traceIds": ids.format(rpc=rpc, other=hex_id(8))})
    assert got.status_code == 400


def test_query_api__dependencies_from_pairs_and_uninstrumented_peers(reader, rpc):
    got = reader.get(f"/api/v2/dependencies?endTs={NOW_US // 1000 + 60_000}&lookback=3600000").json()
    links = {(d["parent"], d["child"]): (d["callCount"], d["errorCount"]) for d in got}
    assert links == {("frontend", "backend"): (1, 0), ("backend", "mysql"): (1, 1)}
    assert reader.get("/api/v2/dependencies").status_code == 400


def test_query_api__autocomplete(reader, rpc):
    assert "http.method" in reader.get("/api/v2/autocompleteKeys").json()
    assert reader.get("/api/v2/autocompleteValues?key=http.method").json() == ["GET"]
    assert reader.get("/api/v2/autocompleteValues").status_code == 400


def test_json_body_with_a_bom_or_junk_after__400(writer):
    body = json.dumps([zipkin_span(hex_id(8), hex_id(8), "web")]) + "]"
    assert writer.post("/api/v2/spans", data=body, content_type="application/json").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "traces?spanName=a%00b",
        "traces?serviceName=%00",
        "traces?remoteServiceName=x%00",
        "traces?annotationQuery=k%3Dv%00",
        "spans?serviceName=a%00",
        "autocompleteValues?key=%00",
    ],
)
def test_query_api__nul_characters_400(reader, query):
    answer = reader.get(f"/api/v2/{query}")
    assert answer.status_code == 400, answer.content


def test_reads_about_one_service__authorized_on_its_resource_as_the_native_search(writer, ruled_client):
    post_zipkin(
        writer, [zipkin_span(hex_id(16), hex_id(8), "billing"), zipkin_span(hex_id(16), hex_id(8), "shop")]
    )
    deny = {"resource": "trace:billing", "action": "read", "effect": "deny", "priority": 10}
    reader = ruled_client("trace:read", rules=[{"resource": "trace:*", "action": "read"}, deny])
    for path in ("traces", "spans", "remoteServices"):
        assert reader.get(f"/api/v2/{path}", {"serviceName": "billing"}).status_code == 403, path
        assert reader.get(f"/api/v2/{path}", {"serviceName": "shop"}).status_code == 200, path
    assert reader.get("/api/v1/trace/traces/", {"service": "billing"}).status_code == 403


def test_a_reader_narrowed_to_some_services_sees_only_traces_of_those_on_every_read(writer, ruled_client):
    """A rule narrowing a reader to trace:frontend guarded only searches by service: searches by
    operation or tag, reads by id, the service lists and the graph showed every service's spans."""
    own, mixed, other = hex_id(16), hex_id(16), hex_id(16)
    root = hex_id(8)
    post_zipkin(
        writer,
        [
            zipkin_span(own, hex_id(8), "frontend", name="GET /"),
            zipkin_span(mixed, root, "frontend", name="GET /", kind="CLIENT"),
            zipkin_span(mixed, hex_id(8), "checkout", name="pay", kind="SERVER", parentId=root),
            zipkin_span(other, hex_id(8), "checkout", name="pay"),
        ],
    )
    reader = ruled_client("trace:read", rules=[{"resource": "trace:frontend", "action": "read"}])
    found = reader.get("/api/v1/trace/traces/").json()["traces"]
    assert [t["trace_id"][-32:] for t in found] == [own]  # a search of every service
    assert reader.get("/api/v1/trace/traces/", {"operation": "pay"}).json()["traces"] == []
    assert reader.get(f"/api/v1/trace/traces/{own}/").status_code == 200
    for trace in (mixed, other):  # a trace with a span of checkout
        refused = reader.get(f"/api/v1/trace/traces/{trace}/")
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "policy_denied")
        assert reader.get(f"/api/v2/trace/{trace}").status_code == 403
    assert reader.get("/api/v1/trace/compare/", {"a": own, "b": mixed}).status_code == 403
    assert reader.get("/api/v2/traceMany", {"traceIds": f"{own},{other}"}).status_code == 403
    assert [s["name"] for s in reader.get("/api/v1/trace/services/").json()["services"]] == ["frontend"]
    assert reader.get("/api/v2/services").json() == ["frontend"]
    graph = reader.get("/api/v1/trace/graph/").json()
    assert graph["edges"] == []  # frontend -> checkout
    # tag values are kept across services: listing them would show checkout's
    assert reader.get("/api/v2/autocompleteValues", {"key": "http.method"}).status_code == 403
    assert graph["services"] == []  # frontend's calls out to checkout were counted in its row
    assert reader.get("/api/v2/dependencies", {"endTs": NOW_US // 1000 + 60_000}).json() == []
    zipkin = reader.get("/api/v2/traces", {"serviceName": "frontend"}).json()
    assert [trace[0]["traceId"][-32:] for trace in zipkin] == [own]
    # and a reader allowed every service sees all of it
    everything = ruled_client("trace:read", rules=[{"resource": "trace:*", "action": "read"}])
    assert len(everything.get("/api/v1/trace/traces/").json()["traces"]) == 3
    assert everything.get(f"/api/v2/trace/{mixed}").status_code == 200
    assert len(everything.get("/api/v1/trace/graph/").json()["edges"]) == 1


def test_a_narrowed_reader__the_limit_counts_the_traces_it_may_read(writer, ruled_client):
    """The newest `limit` traces were taken first and those the reader may not read dropped after:
    with newer traces of other services it got fewer than `limit`, or none, though older ones of
    its own service matched."""
    own = [hex_id(16) for _ in range(3)]
    for age, trace in enumerate(own):
        post_zipkin(writer, [zipkin_span(trace, hex_id(8), "frontend", timestamp=NOW_US - 1000 * (age + 10))])
    post_zipkin(
        writer, [zipkin_span(hex_id(16), hex_id(8), "checkout", timestamp=NOW_US - i) for i in range(5)]
    )
    reader = ruled_client("trace:read", rules=[{"resource": "trace:frontend", "action": "read"}])
    found = reader.get("/api/v1/trace/traces/", {"limit": 2}).json()["traces"]
    assert [t["trace_id"] for t in found] == own[:2]
    zipkin = reader.get("/api/v2/traces", {"limit": 2}).json()
    assert [trace[0]["traceId"] for trace in zipkin] == own[:2]
    assert len(reader.get("/api/v2/traces", {"limit": 10}).json()) == 3


@pytest.mark.parametrize(
    "query",
    [
        "traces?endTs=9223372036854775807",
        "traces?lookback=9223372036854775807",
        "traces?minDuration=9223372036854775807",
        "traces?maxDuration=9223372036854775807",
        "traces?limit=9223372036854775807",
        "dependencies?endTs=9223372036854775807&lookback=9223372036854775807",
    ],
)
def test_query_api__64_bit_bounds__answered_not_500(reader, query):
    # the native search's durations overflowed (a 500); Zipkin's integers are read as 64-bit and
    # a bound past the stored µs matches nothing or everything
    assert reader.get(f"/api/v2/{query}").status_code == 200
    assert reader.get(f"/api/v2/{query.replace('807', '808')}").status_code == 400


@pytest.mark.parametrize("count", [21, 3001])
def test_query_api__annotation_query_of_more_than_20_terms__400_before_the_database(
    reader, count, django_assert_max_num_queries
):
    # each term is a condition of the query: 3,001 took 28 s before SQLite refused it (a 503)
    query = " and ".join(["a"] * (count - 1) + ["b=c"])
    with django_assert_max_num_queries(2):  # the caller's token and policy, no search
        answer = reader.get("/api/v2/traces", {"annotationQuery": query})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_parameter" and error["details"] == {"parameter": "annotationQuery"}
    assert error["message"] == f"annotationQuery has {count} terms; a search takes at most 20."


def test_query_api__annotation_query_of_20_terms__searched(reader, writer):
    trace = hex_id(16)
    tags = {f"k{i}": "v" for i in range(20)}
    post_zipkin(writer, [zipkin_span(trace, hex_id(8), "web", tags=tags)])
    query = " and ".join(f"k{i}=v" for i in range(20))
    answer = reader.get("/api/v2/traces", {"annotationQuery": query})
    assert answer.status_code == 200 and [t[0]["traceId"] for t in answer.json()] == [trace]
