"""The native API: search on any span (limit last), a trace with skew adjusted, compare, graph,
keep rules, retention."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.trace_app.conftest import NOW_US, hex_id, otlp_request, post_otlp, post_zipkin, zipkin_span
from trace_app.models import Edge, KeepRule, Operation, Span
from trace_app.services import expire_spans


def test_search__conditions_apply_before_the_limit(writer, reader):
    # 30 newer traces from "web" without the tag, then one older trace with it: a limit of 5
    # applied first (Jaeger) would miss it.
    tagged = hex_id(16)
    post_otlp(
        writer,
        otlp_request(
            [
                {
                    "trace": tagged,
                    "span": hex_id(8),
                    "start_us": NOW_US - 10_000_000,
                    "attrs": {"customer": "acme"},
                }
            ],
            service="web",
        ),
    )
    post_otlp(
        writer, otlp_request([{"trace": hex_id(16), "span": hex_id(8)} for _ in range(30)], service="web")
    )
    found = reader.get("/api/v1/trace/traces/?service=web&tag=customer=acme&limit=5").json()["traces"]
    assert [t["trace_id"] for t in found] == [tagged]
    assert len(reader.get("/api/v1/trace/traces/?service=web&limit=5").json()["traces"]) == 5
    for tags in ("tag=customer=other&tag=customer=acme", "tag=customer=acme&tag=customer=other"):
        assert reader.get(f"/api/v1/trace/traces/?service=web&{tags}").json()["traces"] == [], tags


def test_search__on_any_span_not_only_roots(writer, reader):
    trace, root = hex_id(16), hex_id(8)
    post_otlp(writer, otlp_request([{"trace": trace, "span": root, "name": "GET /"}], service="edge"))
    post_otlp(
        writer,
        otlp_request(
            [
                {
                    "trace": trace,
                    "span": hex_id(8),
                    "parent": root,
                    "name": "lookup",
                    "duration_us": 90_000,
                    "error": True,
                }
            ],
            service="db-proxy",
        ),
    )
    found = reader.get(
        "/api/v1/trace/traces/?service=db-proxy&operation=lookup&min_duration_ms=50&error=true"
    ).json()["traces"]
    assert len(found) == 1
    summary = found[0]
    assert (
        summary["trace_id"] == trace and summary["root_service"] == "edge" and summary["root_name"] == "GET /"
    )
    assert (
        summary["services"] == {"edge": 1, "db-proxy": 1} and summary["error"] and summary["span_count"] == 2
    )


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=x",
        "min_duration_ms=-1",
        "min_duration_ms=5&max_duration_ms=1",
        "since=yesterday",
        "tag=novalue",
        "service=a%00",
        "tag=k%3Dv%00",
        "word=%00",
    ],
)
def test_search__bad_parameters_400(reader, query):
    answer = reader.get(f"/api/v1/trace/traces/?{query}")
    assert answer.status_code == 400 and answer.json()["error"]["code"].startswith("invalid")


def test_trace__tree_order_depth_and_clock_skew(writer, reader):
    trace, root, call, db = hex_id(8), hex_id(8), hex_id(8), hex_id(8)
    # The server's clock is 50 ms ahead of the client's: its span starts after the client span ends.
    post_zipkin(
        writer,
        [
            zipkin_span(trace, root, "web", name="GET /", kind="SERVER", duration=20_000),
            zipkin_span(
                trace,
                call,
                "web",
                name="call api",
                kind="CLIENT",
                parentId=root,
                timestamp=NOW_US + 1000,
                duration=10_000,
            ),
            zipkin_span(
                trace,
                hex_id(8),
                "api",
                name="handle",
                kind="SERVER",
                parentId=call,
                timestamp=NOW_US + 51_000,
                duration=6000,
            ),
        ],
    )
    adjusted = reader.get(f"/api/v1/trace/traces/{trace}/").json()
    assert [(s["name"], s["depth"]) for s in adjusted["spans"]] == [
        ("GET /", 0),
        ("call api", 1),
        ("handle", 2),
    ]
    handle = adjusted["spans"][2]
    assert adjusted["adjusted"] and handle["timestamp"] == NOW_US + 1000 + 2000 and handle["skew"] == -48_000
    raw = reader.get(f"/api/v1/trace/traces/{trace}/?raw=true").json()
    assert not raw["adjusted"] and raw["spans"][2]["timestamp"] == NOW_US + 51_000
    assert reader.get(f"/api/v1/trace/traces/{db}/").status_code == 404
    assert reader.get("/api/v1/trace/traces/not-hex/").status_code == 400
    assert reader.get(f"/api/v1/trace/traces/{trace}/?raw").json()["adjusted"] is False
    refused = reader.get(f"/api/v1/trace/traces/{trace}/?raw=maybe")  # was read as false
    assert refused.status_code == 400 and refused.json()["error"]["details"] == {
        "raw": ["true or false (or 1/0, yes/no)."]
    }


def test_trace__an_internal_span_is_kind_internal_as_in_the_services_list(writer, reader):
    trace = hex_id(16)
    post_zipkin(writer, [zipkin_span(trace, hex_id(8), "batch", name="crunch")])  # no kind: internal
    (span,) = reader.get(f"/api/v1/trace/traces/{trace}/").json()["spans"]
    assert span["kind"] == "INTERNAL"
    (service,) = [s for s in reader.get("/api/v1/trace/services/").json()["services"] if s["name"] == "batch"]
    assert service["operations"] == [{"name": "crunch", "kind": "INTERNAL"}]
    (zipkin,) = reader.get(f"/api/v2/trace/{trace}").json()
    assert "kind" not in zipkin  # Zipkin's own shape leaves it out


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/trace/compare/?a=463ac35c9f6413ad", "The trace id b is required."),
        ("/api/v2/trace/0000000000000000", "all zeros"),
        ("/api/v1/trace/traces/00000000000000000000000000000000/", "all zeros"),
        ("/api/v2/traces?limit=99999999999999999999", "limit must be a 64-bit integer of at least 1."),
        ("/api/v2/traces?limit=9223372036854775808", "64-bit"),
    ],
)
def test_bad_ids_and_numbers__the_message_names_the_reason(reader, path, message):
    answer = reader.get(path)
    assert answer.status_code == 400 and message in answer.json()["error"]["message"]


def test_trace__a_loop_of_parent_ids_does_not_hang(writer, reader):
    trace, a, b = hex_id(8), hex_id(8), hex_id(8)
    post_zipkin(writer, [zipkin_span(trace, a, "x", parentId=b), zipkin_span(trace, b, "x", parentId=a)])
    assert reader.get(f"/api/v1/trace/traces/{trace}/").json()["span_count"] == 2


def test_compare__spans_matched_by_service_and_operation(writer, reader):
    a, b = hex_id(8), hex_id(8)
    for trace, slow in ((a, 1000), (b, 9000)):
        root = hex_id(8)
        post_zipkin(
            writer,
            [
                zipkin_span(trace, root, "web", name="GET /", duration=20_000),
                zipkin_span(trace, hex_id(8), "db", name="select", parentId=root, duration=slow),
            ],
        )
    post_zipkin(writer, [zipkin_span(b, hex_id(8), "cache", name="get", duration=10)])
    got = reader.get(f"/api/v1/trace/compare/?a={a}&b={b}").json()
    rows = {(r["service"], r["name"]): r for r in got["spans"]}
    assert rows[("db", "select")]["difference"] == 8000 and got["spans"][0]["name"] == "select"
    assert rows[("cache", "get")]["only_in"] == "b"
    assert reader.get(f"/api/v1/trace/compare/?a={a}").status_code == 400
    assert reader.get(f"/api/v1/trace/compare/?a={a}&b={hex_id(8)}").status_code == 404


def test_graph__edges_built_at_ingest_across_requests_in_either_order(writer, reader):
    for server_first in (True, False):
        trace, client_span = hex_id(16), hex_id(8)
        client = otlp_request(
            [{"trace": trace, "span": client_span, "kind": 3, "duration_us": 4000}], service="orders"
        )
        server = otlp_request(
            [
                {
                    "trace": trace,
                    "span": hex_id(8),
                    "parent": client_span,
                    "kind": 2,
                    "duration_us": 3000,
                    "error": server_first,
                }
            ],
            service="stock",
        )
        for request in (server, client) if server_first else (client, server):
            assert post_otlp(writer, request).status_code == 200
    graph = reader.get("/api/v1/trace/graph/").json()
    [edge] = graph["edges"]
    assert (edge["parent"], edge["child"], edge["calls"], edge["errors"]) == ("orders", "stock", 2, 1)
    assert 3.5 <= edge["p50_ms"] <= 4.5 and edge["mean_ms"] == 4.0
    assert {s["name"] for s in graph["services"]} == {"orders", "stock"}
    assert (
        reader.get("/api/v1/trace/graph/?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z").status_code
        == 400
    )


def test_graph__a_failing_server_span_is_not_an_error_of_each_call_it_made(writer, reader):
    # The demo's gateway: a server span (no client spans) calling two services; the drivers' 503
    # fails the gateway, but its call to customers succeeded.
    trace, gateway = hex_id(16), hex_id(8)
    root = {"trace": trace, "span": gateway, "kind": 2, "error": True}
    post_otlp(writer, otlp_request([root], service="gw"))
    ok = {"trace": trace, "span": hex_id(8), "parent": gateway, "kind": 2}
    post_otlp(writer, otlp_request([ok], service="ok"))
    post_otlp(
        writer,
        otlp_request(
            [{"trace": trace, "span": hex_id(8), "parent": gateway, "kind": 2, "error": True}], service="bad"
        ),
    )
    edges = {edge["child"]: edge for edge in reader.get("/api/v1/trace/graph/").json()["edges"]}
    assert (edges["ok"]["calls"], edges["ok"]["errors"]) == (1, 0)
    assert (edges["bad"]["calls"], edges["bad"]["errors"]) == (1, 1)


def test_keep_rules__errors_and_slow_kept_a_share_of_the_rest(writer, reader, api_client):
    admin = api_client("trace:read", "trace:write", "trace:manage")
    answer = admin.post(
        "/api/v1/trace/rules/", {"service": "busy", "keep_share": 0.0, "slower_than_ms": 100}, format="json"
    )
    assert answer.status_code == 201, answer.content
    plain, failed, slow = hex_id(16), hex_id(16), hex_id(16)
    post_otlp(
        writer,
        otlp_request(
            [
                {"trace": plain, "span": hex_id(8)},
                {"trace": failed, "span": hex_id(8), "error": True},
                {"trace": slow, "span": hex_id(8), "duration_us": 200_000},
            ],
            service="busy",
        ),
    )
    assert set(Span.objects.values_list("trace_id", flat=True)) == {failed, slow}
    # a later span of a kept trace is kept too
    post_otlp(writer, otlp_request([{"trace": failed, "span": hex_id(8)}], service="busy"))
    assert Span.objects.filter(trace_id=failed).count() == 2
    assert (
        admin.post("/api/v1/trace/rules/", {"service": "x", "keep_share": 2}, format="json").status_code
        == 400
    )
    assert admin.put("/api/v1/trace/rules/busy/", {"keep_share": 1.0}, format="json").status_code == 200
    assert admin.delete("/api/v1/trace/rules/busy/").status_code == 204
    assert admin.delete("/api/v1/trace/rules/busy/").status_code == 404
    assert reader.post("/api/v1/trace/rules/", {"service": "y"}, format="json").status_code == 403


def test_keep_rules__the_exporters_scope_cannot_write_them(writer, api_client):
    # trace:write, every exporter's scope, could set the * rule to keep nothing and expire all spans
    for call in (
        lambda: writer.post("/api/v1/trace/rules/", {"service": "*", "keep_share": 0.0}, format="json"),
        lambda: writer.put("/api/v1/trace/rules/*/", {"keep_share": 0.0, "retention_days": 1}, format="json"),
        lambda: writer.delete("/api/v1/trace/rules/*/"),
    ):
        answer = call()
        assert answer.status_code == 403 and "'trace:manage'" in answer.json()["error"]["message"]
    assert not KeepRule.objects.exists()
    manager = api_client("trace:write", "trace:manage")  # on top of trace:write, as db:manage
    assert manager.put("/api/v1/trace/rules/*/", {"keep_share": 0.5}, format="json").status_code == 200
    assert manager.get("/api/v1/trace/rules/").status_code == 403  # reading them is trace:read's


def test_keep_rules__put_replaces_the_whole_rule_post_refuses_a_second_one(api_client):
    admin = api_client("trace:read", "trace:write", "trace:manage")
    url = "/api/v1/trace/rules/web/"
    first = {"keep_errors": False, "keep_share": 0.1, "slower_than_ms": 500, "retention_days": 3}
    assert admin.put(url, first, format="json").status_code == 200
    # a field left out takes its default (the others kept their old values, keep_share did not)
    answer = admin.put(url, {"keep_share": 0.2}, format="json").json()
    fields = ("keep_share", "keep_errors", "slower_than_ms", "retention_days")
    assert [answer[name] for name in fields] == [0.2, True, None, None]
    refused = admin.put(url, {"keep_shar": 0.5}, format="json")  # was 200, the field dropped
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {"keep_shar": ["Unknown field."]}
    again = admin.post("/api/v1/trace/rules/", {"service": "web", "keep_share": 0.9}, format="json")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "rule_exists")
    assert admin.get(url).json()["keep_share"] == 0.2


def test_retention__old_spans_and_edges_go_a_service_override_applies(writer):
    day = 86_400_000_000
    KeepRule.objects.create(service="short", retention_days=1)
    for service, age in (("long", 3), ("long", 10), ("short", 3)):
        post_zipkin(writer, [zipkin_span(hex_id(8), hex_id(8), service, timestamp=NOW_US - age * day)])
    Operation.objects.create(service="gone", name="x", last_seen=NOW_US - 30 * day)
    expire_spans(now_us=NOW_US)
    assert sorted(Span.objects.values_list("service", flat=True)) == ["long"]
    assert not Edge.objects.filter(minute__lt=(NOW_US - 7 * day) // 60_000_000).exists()
    assert set(Operation.objects.values_list("service", flat=True)) == {"long", "short"}


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="day partitions are PostgreSQL's")
def test_partitions__created_ahead_rows_moved_out_of_default_old_ones_dropped(writer):
    from datetime import UTC, datetime, timedelta

    from trace_app.store import partitions

    today = datetime.now(UTC).date()
    post_zipkin(writer, [zipkin_span(hex_id(8), hex_id(8), "web")])  # lands in the default partition
    yesterday = today - timedelta(days=1)
    post_zipkin(
        writer, [zipkin_span(hex_id(8), hex_id(8), "web", timestamp=partitions.day_start(yesterday) + 9)]
    )
    created = partitions.ensure_ahead()
    assert partitions.partition_name(today) in created and partitions.partition_name(yesterday) in created
    assert len(created) == 5
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")  # noqa: S608 - a constant table name
        assert cursor.fetchone()[0] == 0
    assert Span.objects.count() == 2
    old_day = today - timedelta(days=9)
    partitions.create(old_day)
    post_zipkin(
        writer, [zipkin_span(hex_id(8), hex_id(8), "web", timestamp=partitions.day_start(old_day) + 5)]
    )
    expire_spans(now_us=NOW_US)
    assert partitions.partition_name(old_day) not in partitions.existing()
    assert Span.objects.count() == 2


def test_keep_rules__out_of_range_values_400_nothing_stored(api_client):
    admin = api_client("trace:read", "trace:write", "trace:manage")
    for body in ({"slower_than_ms": 10**33}, {"retention_days": 0}, {"keep_share": -0.1}):
        answer = admin.put("/api/v1/trace/rules/web/", body, format="json")
        assert answer.status_code == 400, body
    assert not KeepRule.objects.exists()


@pytest.mark.parametrize("path", ["graph/", "traces/"])
def test_until_at_the_first_representable_instant__400(reader, path):
    answer = reader.get(f"/api/v1/trace/{path}?until=0001-01-01T00:00:00Z")
    assert answer.status_code == 400


def test_a_resent_batch__counts_once_in_the_search_and_the_graph(writer, reader):
    """An exporter retries a batch the platform stored (after a 503 or a timeout): the trace view
    showed one span, the search summary and the graph counted each copy."""
    trace, root = hex_id(16), hex_id(8)
    batch = [
        {"trace": trace, "span": root, "kind": 3},  # CLIENT
        {"trace": trace, "span": hex_id(8), "parent": root, "kind": 2},
    ]
    for _ in range(3):
        post_otlp(writer, otlp_request(batch[:1], service="web"))
        post_otlp(writer, otlp_request(batch[1:], service="api"))
    [found] = reader.get("/api/v1/trace/traces/", {"service": "web"}).json()["traces"]
    assert found["span_count"] == 2 and found["services"] == {"web": 1, "api": 1}
    [edge] = reader.get("/api/v1/trace/graph/").json()["edges"]
    assert (edge["parent"], edge["child"], edge["calls"]) == ("web", "api", 1)


def test_keep_rule__absent__one_code_for_get_and_delete(reader, api_client):
    manager = api_client("trace:write", "trace:manage")
    for client, method in ((reader, "get"), (manager, "delete")):
        answer = getattr(client, method)("/api/v1/trace/rules/nosuch/")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "rule_not_found"
        assert answer.json()["error"]["details"] == {"service": "nosuch"}


def test_keep_rule__put_naming_another_service__400_and_nothing_written(api_client):
    writer = api_client("trace:read", "trace:write", "trace:manage")
    # the body's service was ignored and the URL's rule written, with a 200
    answer = writer.put("/api/v1/trace/rules/web/", {"service": "other", "keep_share": 0.5}, format="json")
    assert answer.status_code == 400 and "service" in answer.json()["error"]["details"]
    assert not KeepRule.objects.exists()
    assert writer.put("/api/v1/trace/rules/web/", {"service": "web"}, format="json").status_code == 200


def test_keep_rules_list__only_the_services_the_caller_may_read(api_client, ruled_client):
    admin = api_client("admin")
    for service in ("frontend", "checkout"):
        assert (
            admin.put(f"/api/v1/trace/rules/{service}/", {"keep_share": 0.5}, format="json").status_code
            == 200
        )
    narrowed = ruled_client("trace:read", rules=[{"resource": "trace:frontend", "action": "read"}])
    assert narrowed.get("/api/v1/trace/rules/checkout/").status_code == 403
    assert [r["service"] for r in narrowed.get("/api/v1/trace/rules/").json()["results"]] == ["frontend"]
    assert len(admin.get("/api/v1/trace/rules/").json()["results"]) == 2


@pytest.mark.parametrize(
    "query",
    ["min_duration_ms=1e308", "max_duration_ms=1e306", "min_duration_ms=1e20", "max_duration_ms=1.000001e15"],
)
def test_search__a_duration_beyond_64_bit_microseconds__400_naming_it(reader, query):
    # 1e306 ms overflowed to infinity when turned into µs: a 500 (OverflowError)
    answer = reader.get(f"/api/v1/trace/traces/?{query}")
    assert answer.status_code == 400
    error = answer.json()["error"]
    name = query.split("=")[0]
    assert error["code"] == "invalid_parameter" and error["details"] == {"parameter": name}
    assert "is not a number of milliseconds from 0 to 1000000000000000" in error["message"]


def test_search__the_longest_duration_taken__200(reader):
    answer = reader.get("/api/v1/trace/traces/", {"max_duration_ms": "1e15"})
    assert answer.status_code == 200 and answer.json() == {"traces": []}


@pytest.mark.parametrize("name", ["tag", "word"])
def test_search__more_than_20_tags_or_words__400_naming_the_parameter_and_the_limit(reader, name):
    # each one is a condition of the database's query: a thousand took seconds, then a 503
    values = [f"k{i}=v" if name == "tag" else f"w{i}" for i in range(21)]
    answer = reader.get("/api/v1/trace/traces/", {name: values})
    assert answer.status_code == 400
    assert "20" in answer.json()["error"]["details"][name][0]
    assert reader.get("/api/v1/trace/traces/", {name: values[:20]}).status_code == 200


@pytest.mark.parametrize("service", ["a/b", "team/checkout/", "tab\there"])
def test_keep_rule__a_service_with_a_slash_or_a_control_character__has_one(writer, api_client, service):
    # ingest takes the name, but a rule answered invalid_service ("no '/'"): it could never get one
    admin = api_client("trace:read", "trace:write", "trace:manage")
    answer = admin.post("/api/v1/trace/rules/", {"service": service, "keep_share": 0.0}, format="json")
    assert answer.status_code == 201, answer.content
    post_otlp(writer, otlp_request([{"trace": hex_id(16), "span": hex_id(8)}], service=service))
    assert not Span.objects.exists()  # the rule applies
    escaped = "".join("%2F" if c == "/" else "%09" if c == "\t" else c for c in service)
    for url in (f"/api/v1/trace/rules/{escaped}/", f"/api/v1/trace/rules/{service.replace(chr(9), '%09')}/"):
        assert admin.get(url).json()["service"] == service
        assert admin.put(url, {"keep_share": 0.5}, format="json").json()["keep_share"] == 0.5
    assert admin.delete(f"/api/v1/trace/rules/{escaped}/").status_code == 204
    assert not KeepRule.objects.exists()


def test_keep_rule__a_service_with_a_line_break__400_naming_what_a_rule_takes(api_client):
    admin = api_client("trace:read", "trace:write", "trace:manage")
    answer = admin.post("/api/v1/trace/rules/", {"service": "a\nb"}, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid_service" and "any but NUL or a line break" in error["message"]
