"""``platform_client.trace`` (the OpenTelemetry SDK set up for the platform) and ``platform trace``."""

from __future__ import annotations

import sys
from unittest import mock

import pytest

from platform_client import trace as sdk
from platform_client.session import PlatformSession
from trace_app.models import Span

pytestmark = pytest.mark.django_db(transaction=True)


def test_setup__spans_reach_the_platform_with_the_accounts_token_and_b3_is_propagated(
    live_server, service_account
):
    from opentelemetry import propagate
    from opentelemetry import trace as otel

    client_id, secret = service_account("trace:write")
    with PlatformSession(live_server.url, client_id, secret) as session:
        provider = sdk.setup("billing", session=session, version="2.1", batch=False)
        tracer = provider.get_tracer("tests")
        with tracer.start_as_current_span("invoice", kind=otel.SpanKind.SERVER) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        provider.shutdown()
    trace_id = format(span.get_span_context().trace_id, "032x")
    stored = Span.objects.get(trace_id=trace_id)
    assert (stored.service, stored.name, stored.resource["service.version"]) == ("billing", "invoice", "2.1")
    assert carrier["traceparent"].split("-")[1] == trace_id and carrier["x-b3-traceid"] == trace_id


def test_setup__unknown_instrumentation_is_refused(live_server, service_account):
    client_id, secret = service_account("trace:write")
    with (
        PlatformSession(live_server.url, client_id, secret) as session,
        pytest.raises(ValueError, match="cannot"),
    ):
        sdk.setup("x", session=session, instrument=["flask"])


def test_setup__instrumentation_not_installed__names_the_package_to_install():
    with (
        mock.patch.dict(sys.modules, {"opentelemetry.instrumentation.requests": None}),
        pytest.raises(ImportError, match="pip install opentelemetry-instrumentation-requests"),
    ):
        sdk.setup("x", session=mock.Mock(), instrument=["httpx", "requests"])


def test_cli__search_show_services_deps_compare(cli_as, service_account, live_server):
    from tests.trace_app.conftest import hex_id, post_zipkin, zipkin_span

    cli = cli_as("trace", "trace:read", "trace:write", "trace:manage")
    a, b = hex_id(8), hex_id(8)
    from rest_framework.test import APIClient

    writer = APIClient()
    client_id, secret = service_account("trace:write")
    with PlatformSession(live_server.url, client_id, secret) as session:
        writer.credentials(HTTP_AUTHORIZATION=f"Bearer {session.credentials.token()}")
    for trace_id, took in ((a, 100), (b, 900)):
        root = hex_id(8)
        post_zipkin(
            writer,
            [
                zipkin_span(trace_id, root, "web", name="GET /", kind="CLIENT", duration=took),
                zipkin_span(
                    trace_id, hex_id(8), "api", name="list", kind="SERVER", parentId=root, duration=took // 2
                ),
            ],
        )
    code, found, _ = cli("search", "--service", "api", "--limit", "5")
    assert code == 0 and {t["trace_id"][-16:] for t in found} == {a, b}
    with pytest.raises(SystemExit) as refused:  # 0 was dropped: 20 traces, exit 0
        cli("search", "--limit", "0")
    assert refused.value.code == 2
    code, slow, _ = cli("search", "--service", "api", "--min-duration-ms", "0")
    assert code == 0 and len(slow) == 2
    code, shown, _ = cli("show", a)
    assert code == 0 and [s["name"] for s in shown["spans"]] == ["GET /", "list"]
    assert cli("services")[1][0]["name"] == "api"
    deps = cli("deps")[1]
    assert [(e["parent"], e["child"], e["calls"]) for e in deps["edges"]] == [("web", "api", 2)]
    code, compared, _ = cli("compare", a, b)
    assert code == 0 and compared["difference"] == 800
    code, _, err = cli("show", "nothex")
    assert code == 1 and "invalid_trace_id" in err

    # Tables: the span tree, the graph's edges, each operation compared.
    tree = cli("show", a, "--output", "table")[1].splitlines()
    assert tree[0].split() == ["SPAN", "SERVICE", "KIND", "OFFSET", "DURATION", "ERROR", "SPAN_ID"]
    assert tree[1].split()[:4] == ["GET", "/", "web", "CLIENT"] and tree[2].startswith("  list  ")
    assert "0.100 ms" in tree[1] and "0.050 ms" in tree[2]
    edges = cli("deps", "--output", "table")[1].splitlines()
    assert edges[1].split()[:4] == ["web", "->", "api", "2"]
    rows = cli("compare", a, b, "--output", "table")[1].splitlines()
    assert rows[1].split() == ["(whole", "trace)", "0.100", "ms", "0.900", "ms", "0.800", "ms"]
    assert rows[2].split() == ["web:", "GET", "/", "0.100", "ms", "0.900", "ms", "0.800", "ms", "0/0"]
    assert "api: list" in rows[3]
    services = cli("services", "--output", "table")[1].splitlines()
    assert services[1].split()[:3] == ["api", "list", "(SERVER)"]


def test_cli__keep_rules_set_list_rm_and_the_exporters_scope_refused(cli_as, capsys):
    exporter = cli_as("trace", "trace:read", "trace:write")
    code, _, err = exporter("rules", "set", "*", "--keep-share", "0")
    assert code == 1 and "trace:manage" in err  # every exporter's scope cannot drop everyone's spans
    cli = cli_as("trace", "trace:read", "trace:write", "trace:manage")
    code, rule, _ = cli("rules", "set", "checkout", "--keep-share", "0.1", "--slower-than-ms", "500")
    assert code == 0 and (rule["keep_share"], rule["slower_than_ms"], rule["keep_errors"]) == (0.1, 500, True)
    code, rule, _ = cli("rules", "set", "checkout", "--no-keep-errors", "--retention-days", "3")
    assert (rule["keep_share"], rule["slower_than_ms"], rule["keep_errors"]) == (1.0, None, False)  # replaced
    assert [r["service"] for r in cli("rules", "list")[1]] == ["checkout"]
    assert cli("rules", "rm", "checkout")[:2] == (0, {"deleted": "checkout"})
    assert cli("rules", "list")[1] == [] and cli("rules", "rm", "checkout")[0] == 1


def test_cli__search_with_a_duration_beyond_the_limit__the_platforms_400(cli_as):
    # --min-duration-ms 1e306 overflowed to infinity on the server: a 500
    cli = cli_as("trace", "trace:read")
    code, _, err = cli("search", "--min-duration-ms", "1e306")
    assert code == 1 and "invalid_parameter" in err and "min_duration_ms" in err


def test_cli__a_keep_rule_for_a_service_with_a_slash(cli_as):
    cli = cli_as("trace", "trace:read", "trace:write", "trace:manage")
    code, rule, err = cli("rules", "set", "team/checkout", "--keep-share", "0.1")
    assert code == 0 and rule["service"] == "team/checkout", err
    assert [r["service"] for r in cli("rules", "list")[1]] == ["team/checkout"]
    assert cli("rules", "rm", "team/checkout")[:2] == (0, {"deleted": "team/checkout"})
