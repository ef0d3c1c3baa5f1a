"""``platform router ...`` against a live platform."""

from __future__ import annotations

import time

import pytest

from discovery_app import services as discovery
from router_app import services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("router", "router:read", "router:write")


@pytest.fixture
def fleet():
    for number in range(3):
        discovery.node_register(
            node_id=f"orders-{number}", service="orders", version="1.0" if number else "2.0",
            address="10.0.0.1", port=8000 + number,
        )  # fmt: skip


def test_cli__rules_and_labels_then_routes_and_explain(cli, fleet):
    code, rule, _ = cli("rules", "add", "orders", "2.0", "beta", "true", "--weight", "20", "--priority", "3")
    assert code == 0 and (rule["weight"], rule["priority"]) == (20, 3)
    code, label, _ = cli("labels", "add", "orders", "1.0", "zone", "eu", "--weight", "100")
    assert code == 0
    code, changed, _ = cli("rules", "set", str(rule["id"]), "orders", "2.0", "beta", "true", "--weight", "30")
    assert code == 0 and (changed["weight"], changed["priority"]) == (30, 3)  # the priority it had
    assert [r["id"] for r in cli("rules", "list", "--service", "orders")[1]] == [rule["id"]]

    code, routes, _ = cli("routes", "orders", "--label", "beta:true", "--caller", "checkout")
    assert code == 0 and [r["id"] for r in routes["rules_applied"]] == [rule["id"]]
    assert {n["id"]: n["labels"] for v in routes["versions"] for n in v["nodes"]}["orders-1"] == {
        "zone": "eu"
    }

    code, explained, _ = cli("explain", "orders", "--label", "beta:true")
    assert code == 0
    assert any(
        line.startswith(f"rule #{rule['id']} (priority 3): beta=true sends 30% to 2.0")
        for line in explained["explain"]
    )
    assert any(line.startswith("version 2.0:") for line in explained["explain"])

    assert cli("labels", "rm", str(label["id"]))[0] == 0
    assert cli("labels", "list")[1] == []


def test_cli__stats_show_nodes_and_decisions(cli, fleet):
    services.stats_ingest(
        caller="checkout",
        windows=[{"service": "orders", "node": "orders-1", "start": int(time.time()) - 5, "requests": 9,
                  "successes": 0, "errors": 9, "consecutive_5xx": 9}],
        now=time.time(),
    )  # fmt: skip
    services.service_evaluate(service="orders", now=time.time())

    code, stats, _ = cli("stats", "orders")

    assert code == 0
    nodes = {node["node"]: node for node in stats["nodes"]}
    assert (nodes["orders-1"]["state"], nodes["orders-1"]["requests"]) == ("ejected", 9)
    assert stats["events"][0]["type"] == "consecutive_5xx"


def test_cli__errors(cli, fleet):
    code, _, err = cli("rules", "add", "orders", "2.0", "beta", "true", "--weight", "120")
    assert code == 1 and '"invalid"' in err
    code, _, err = cli("routes", "orders", "--label", "nocolon")
    assert code == 2 and "invalid_input" in err
    code, _, err = cli("routes", "nowhere")
    assert code == 1 and "unknown_service" in err


def test_cli__rate_limits(cli, fleet):
    code, limit, _ = cli("ratelimits", "set", "orders", "checkout", "--rate", "5", "--burst", "10")
    assert code == 0 and (limit["rate"], limit["burst"]) == (5.0, 10)
    assert cli("routes", "orders", "--caller", "checkout")[1]["rate_limit"] == {"rate": 5.0, "burst": 10}
    assert [item["caller"] for item in cli("ratelimits", "list", "--service", "orders")[1]] == ["checkout"]
    assert cli("ratelimits", "rm", str(limit["id"]))[0] == 0
    assert cli("ratelimits", "list")[1] == []
