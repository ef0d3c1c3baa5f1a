"""Evaluations over stored windows: merged across callers, decisions stored, decisions API, dry run."""

from __future__ import annotations

import time

import pytest

from router_app import services, tasks
from router_app.models import NodeState, OutlierEvent, Policy, StatsWindow
from tests.router_app.conftest import allow_only, window

pytestmark = pytest.mark.django_db

STATS = "/api/v1/router/stats/"


@pytest.fixture
def fleet(make_node):
    """Ten passing nodes of 'orders' (orders-n0 .. orders-n9)."""
    return [make_node(node_id=f"orders-n{i}").id for i in range(10)]


def report(reporter, *windows, caller="checkout"):
    response = reporter.post(STATS, {"caller": caller, "windows": list(windows)}, format="json")
    assert response.status_code == 202, response.content


def test_evaluate__merges_callers_and_ejects_the_failing_node(reporter, fleet, committed):
    for caller in ("checkout", "billing"):  # each caller alone is under the request volume
        report(reporter, *[window(node=n, requests=60) for n in fleet[1:]], caller=caller)
        report(reporter, window(node=fleet[0], requests=60, successes=30), caller=caller)

    with committed():
        result = services.service_evaluate(service="orders", now=time.time())

    assert (result.nodes, result.events, result.changed) == (10, 1, True)
    bad = NodeState.objects.get(node=fleet[0])
    assert (bad.requests, bad.successes, bad.ejected, bad.weight, bad.ejection_type) == (
        120,
        60,
        True,
        0,
        "success_rate",
    )
    assert bad.reasons[0].startswith("ejected (success_rate")
    event = OutlierEvent.objects.get()
    assert (event.node, event.action, event.type, event.enforced, event.host_rate) == (
        fleet[0],
        "eject",
        "success_rate",
        True,
        50.0,
    )
    assert event.service_average == pytest.approx(95.0)
    assert event.factors["requests"] == 120


def test_decisions_api__current_state_and_last_events(reader, reporter, fleet, committed):
    report(reporter, window(node=fleet[0], requests=10, successes=0, consecutive_5xx=10))
    with committed():
        services.service_evaluate(service="orders", now=time.time())

    response = reader.get("/api/v1/router/services/orders/decisions/")

    assert response.status_code == 200
    body = response.json()
    assert body["enforce"] is True and body["outlier_detection"]["consecutive_5xx"] == 5
    states = {n["node"]: n for n in body["nodes"]}
    assert states[fleet[0]]["state"] == "ejected" and states[fleet[0]]["weight"] == 0
    assert states[fleet[1]]["state"] == "active" and states[fleet[1]]["weight"] == 100
    (event,) = body["events"]
    assert {k: event[k] for k in ("node", "type", "action", "num_ejections", "enforced")} == {
        "node": fleet[0],
        "type": "consecutive_5xx",
        "action": "eject",
        "num_ejections": 1,
        "enforced": True,
    }


def test_decisions_api__queries_are_pinned(reader, fleet, committed, django_assert_num_queries):
    with committed():
        services.service_evaluate(service="orders", now=time.time())
    reader.get("/api/v1/router/services/orders/decisions/")

    with django_assert_num_queries(4):  # policy, node states, events, rate-limited calls
        assert reader.get("/api/v1/router/services/orders/decisions/").status_code == 200


def test_dry_run__decisions_recorded_weights_not_applied(writer, reporter, fleet, committed):
    with committed():
        response = writer.patch("/api/v1/router/services/orders/policy/", {"enforce": False}, format="json")
    assert response.status_code == 200 and response.json()["enforce"] is False
    report(reporter, window(node=fleet[0], requests=10, successes=0, consecutive_5xx=10))

    with committed():
        services.service_evaluate(service="orders", now=time.time())

    assert list(OutlierEvent.objects.values_list("action", "enforced")) == [("eject", False)]
    routes = writer.get("/api/v1/router/routes/orders/").json()
    node = next(n for v in routes["versions"] for n in v["nodes"] if n["id"] == fleet[0])
    assert (node["weight"], node["state"]) == (100, "active")
    assert any("dry run" in reason for reason in node["reasons"])


def _served(client, node_id):
    """(weight, state, reasons) of a node in the routes and in the decisions."""
    routes = client.get("/api/v1/router/routes/orders/").json()
    route = next(n for v in routes["versions"] for n in v["nodes"] if n["id"] == node_id)
    decisions = client.get("/api/v1/router/services/orders/decisions/").json()
    state = next(n for n in decisions["nodes"] if n["node"] == node_id)
    return (route["weight"], route["state"], route["reasons"]), (state["weight"], state["reasons"])


@pytest.mark.parametrize("dry_run_first", [True, False])
def test_enforce_switched_after_an_evaluation__weights_and_reasons_follow_the_policy_now(
    writer, reporter, fleet, committed, dry_run_first
):
    policy = "/api/v1/router/services/orders/policy/"
    with committed():
        writer.patch(policy, {"enforce": not dry_run_first}, format="json")
    report(reporter, window(node=fleet[0], requests=10, successes=0, consecutive_5xx=8))
    with committed():
        services.service_evaluate(service="orders", now=time.time())

    with committed():
        assert writer.patch(policy, {"enforce": dry_run_first}, format="json").status_code == 200

    ejected = "ejected (consecutive_5xx, ejection 1)"
    if dry_run_first:  # the weight 0 the dry run computed is applied now, and said so
        assert _served(writer, fleet[0]) == ((0, "ejected", [ejected]), (0, [ejected]))
    else:  # a dry run now: served at full weight, and said so
        note = [ejected, "dry run: weight 0 not applied"]
        assert _served(writer, fleet[0]) == ((100, "active", note), (100, note))
    events = OutlierEvent.objects.values_list("action", "enforced")
    assert list(events) == [("eject", not dry_run_first)]  # the decision as it was taken


def test_policy__bad_parameters__are_400_and_change_nothing(writer, fleet):
    for body in (
        {"max_ejection_percent": 101},
        {"interval": 0},
        {"consecutive_5xx": -1},
        {"enforce": "maybe"},
        {"outlier_detection": {"interval": 0}},
        {"outlier_detection": {"nope": 1}},
        {"outlier_detection": {"interval": 5}, "interval": 6},
        {"outlier_detection": 5},
    ):
        response = writer.patch("/api/v1/router/services/orders/policy/", body, format="json")
        assert response.status_code == 400, body
    assert writer.get("/api/v1/router/services/orders/policy/").json()["outlier_detection"]["interval"] == 10
    assert not Policy.objects.filter(service="orders", interval=0).exists()


def test_policy__what_a_read_answers_can_be_written_back(writer, fleet):
    url = "/api/v1/router/services/orders/policy/"
    read = writer.get(url).json()
    changed = {**read["outlier_detection"], "consecutive_5xx": 3}
    response = writer.patch(url, {"outlier_detection": changed, "enforce": read["enforce"]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["outlier_detection"] == changed


def test_policy_and_evaluate__an_unknown_service__404_and_nothing_made(writer, fleet):
    patched = writer.patch("/api/v1/router/services/nosuch/policy/", {"enforce": True}, format="json")
    evaluated = writer.post("/api/v1/router/services/nosuch/evaluate/")

    assert (patched.status_code, patched.json()["error"]["code"]) == (404, "unknown_service")
    assert (evaluated.status_code, evaluated.json()["error"]["code"]) == (404, "unknown_service")
    for path in ("policy", "decisions"):  # reads too: a typo is no empty service
        read = writer.get(f"/api/v1/router/services/nosuch/{path}/")
        assert (read.status_code, read.json()["error"]["code"]) == (404, "unknown_service")
    assert not Policy.objects.filter(service="nosuch").exists()
    names = [s["service"] for s in writer.get("/api/v1/router/services/").json()["results"]]
    assert "nosuch" not in names
    ok = writer.patch("/api/v1/router/services/orders/policy/", {"enforce": False}, format="json")
    assert ok.status_code == 200  # registered in discovery


def test_policy__refusals(reader, outsider):
    assert (
        reader.patch("/api/v1/router/services/orders/policy/", {"enforce": False}, format="json").status_code
        == 403
    )
    assert outsider.get("/api/v1/router/services/orders/policy/").status_code == 403
    assert reader.get("/api/v1/router/services/bad%2Fname/policy/").status_code == 404


def test_evaluate_task__evaluates_due_services_once_per_interval(reporter, fleet):
    report(reporter, window(node=fleet[0]))

    first = tasks.evaluate()
    again = tasks.evaluate()  # within the interval: not due

    assert first["services"] == 1 and again["services"] == 0
    assert NodeState.objects.filter(service="orders").count() == 10


def test_evaluate__reads_the_windows_that_arrived_in_the_lookback_not_those_that_started_in_it(
    reporter, fleet, committed
):
    # a caller sends a window once it closed, up to a window's length later: one that started 19 s
    # before it arrived was out of a 20 s lookback (by its start) a second after, so the service
    # was seldom due and its evaluations saw no calls
    sent = time.time()
    report(
        reporter, window(node=fleet[0], start=int(sent) - 19, requests=10, successes=0, consecutive_5xx=10)
    )
    backlog = int(sent) - 70  # sent late, after an outage: not current calls
    report(reporter, window(node=fleet[1], start=backlog, requests=10, successes=0, consecutive_5xx=10))

    assert services.due_services(sent + 2) == ["orders"]
    with committed():
        services.service_evaluate(service="orders", now=sent + 2)

    states = {s.node: (s.requests, s.ejected) for s in NodeState.objects.filter(node__in=fleet[:2])}
    assert states == {fleet[0]: (10, True), fleet[1]: (0, False)}
    assert services.due_services(sent + 25) == ["orders"]  # the ejected node keeps it due
    StatsWindow.objects.update(received=StatsWindow.objects.get(node=fleet[0]).start)
    NodeState.objects.update(ejected=False)
    assert services.due_services(sent + 2) == []  # by when they arrived, they are old


def test_evaluate_endpoint__needs_write(reader, writer, fleet):
    assert reader.post("/api/v1/router/services/orders/evaluate/").status_code == 403

    response = writer.post("/api/v1/router/services/orders/evaluate/")

    assert response.status_code == 200
    assert response.json()["nodes"] == 10


def test_nodes_gone_from_discovery__lose_their_state(reporter, make_node, committed):
    from discovery_app import services as discovery

    node = make_node(node_id="orders-a")
    make_node(node_id="orders-b")
    with committed():
        services.service_evaluate(service="orders", now=time.time())
    with committed():
        discovery.node_deregister(node_id=node.id)

    with committed():
        services.service_evaluate(service="orders", now=time.time())

    assert list(NodeState.objects.values_list("node", flat=True)) == ["orders-b"]


def test_prune_task__keeps_recent_windows(reporter, fleet):
    report(reporter, window(node=fleet[0]))

    assert tasks.prune() == {"windows": 0, "events": 0}
    assert StatsWindow.objects.count() == 1


def test_service_list__counts_nodes_and_ejections(reader, reporter, fleet, committed):
    report(reporter, window(node=fleet[0], requests=10, successes=0, consecutive_5xx=10))
    with committed():
        services.service_evaluate(service="orders", now=time.time())

    response = reader.get("/api/v1/router/services/")

    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert (item["service"], item["nodes"], item["ejected"]) == ("orders", 10, 1)


def test_service_list__leaves_out_the_services_the_policy_does_not_let_the_caller_read(api_client):
    services.policy_update(service="orders", values={"enforce": False})
    services.policy_update(service="billing", values={})
    narrowed = api_client("router:read")
    allow_only("billing")

    response = narrowed.get("/api/v1/router/services/")

    assert response.status_code == 200
    assert [item["service"] for item in response.json()["results"]] == ["billing"]


def test_decisions_api__calls_refused_by_rate_limits_as_reported(reader, reporter, fleet):
    refused = window(node="", requests=0, dropped=7)
    report(reporter, refused, caller="checkout")
    report(reporter, {**refused, "dropped": 2}, caller="billing")

    body = reader.get("/api/v1/router/services/orders/decisions/").json()

    assert body["rate_limited"] == [{"caller": "billing", "dropped": 2}, {"caller": "checkout", "dropped": 7}]


def test_evaluate__a_failing_node_reported_without_latencies__loses_weight(reporter, make_node, committed):
    # Stats from a caller other than the SDK may carry no histogram: the node kept weight 100
    # however often it failed, and the routes sent it as much as the healthy one.
    healthy, failing = make_node(node_id="orders-ok").id, make_node(node_id="orders-bad").id
    bare = [
        {k: v for k, v in w.items() if k != "latency"} for w in (window(node=healthy), window(node=failing))
    ]
    bare[1].update(successes=70, errors=30)
    report(reporter, *bare)

    with committed():
        services.service_evaluate(service="orders", now=time.time())

    weights = dict(NodeState.objects.values_list("node", "weight"))
    assert weights[healthy] == 100
    assert weights[failing] == 70  # no node has latencies: its success rate against the best's
    bad = NodeState.objects.get(node=failing)
    assert bad.factors["latency_mean_ms"] is None and "without latencies" in bad.reasons[0]
