"""Registering, reading and deregistering nodes through the API; bad input leaves the registry alone."""

from __future__ import annotations

import json

import pytest

from discovery_app.models import Node, Result, Service

pytestmark = pytest.mark.django_db

NODES = "/api/v1/discovery/nodes/"
SERVICES = "/api/v1/discovery/services/"


def body(**overrides):
    return {
        "service": "orders",
        "version": "1.0",
        "address": "10.1.2.3",
        "port": 8080,
        "metadata": {"zone": "eu-1"},
        "endpoints": [
            {
                "name": "Orders.Create",
                "request": {"type": "object", "properties": {"sku": {"type": "string"}}},
                "response": {"type": "object"},
                "metadata": {"stream": "false"},
            }
        ],
        **overrides,
    }


def test_register__new_node__is_created_with_default_ttl(writer, committed):
    # when
    with committed():
        response = writer.put(f"{NODES}orders-a/", body(interval=5), format="json")
    # then
    assert response.status_code == 201, response.content
    node = response.json()
    assert (node["id"], node["service"], node["version"], node["status"]) == (
        "orders-a",
        "orders",
        "1.0",
        "passing",
    )
    assert (node["interval"], node["ttl"]) == (5, 15)
    assert node["endpoints"][0]["name"] == "Orders.Create"


def test_register__node_deregistered_right_after__answers_as_registered(writer, monkeypatch):
    # another call deregistered the node between this registration's commit and its answer
    from discovery_app import services

    register = services.node_register

    def then_deregistered(**kwargs):
        node, created = register(**kwargs)
        Node.objects.filter(id=node.id).delete()
        return node, created

    monkeypatch.setattr(services, "node_register", then_deregistered)
    response = writer.put(f"{NODES}orders-gone/", body(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] == "orders-gone" and response.json()["service"] == "orders"


def test_register__post_without_id__generates_one(writer, committed):
    with committed():
        response = writer.post(NODES, body(), format="json")
    assert response.status_code == 201
    assert len(response.json()["id"]) == 32


def test_register__same_id_again__updates_the_node(writer, committed):
    # given
    with committed():
        writer.put(f"{NODES}orders-a/", body(), format="json")
    # when
    with committed():
        response = writer.put(f"{NODES}orders-a/", body(port=9090, version="2.0"), format="json")
    # then
    assert response.status_code == 200
    assert (response.json()["port"], response.json()["version"]) == (9090, "2.0")
    assert Node.objects.count() == 1
    # and the emptied version is gone
    assert list(Service.objects.values_list("version", flat=True)) == ["2.0"]
    assert [r.action for r in Result.objects.order_by("index")] == ["create", "update"]


def test_register__same_id_under_other_service__is_409_and_changes_nothing(writer, make_node):
    # given
    make_node(node_id="shared-1", service="orders")
    # when
    response = writer.put(f"{NODES}shared-1/", body(service="billing"), format="json")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "node_id_taken"
    assert Node.objects.get(id="shared-1").service.name == "orders"
    assert not Service.objects.filter(name="billing").exists()


def test_register__an_id_taken_under_a_service_the_caller_may_not_read__409_not_naming_it(
    ruled_client, make_node
):
    # the 409 named the other service, which the caller's policy hides from it
    make_node(node_id="b1", service="billing")
    caller = ruled_client(
        "discovery:read", "discovery:write", rules=[{"resource": "discovery:ord*", "action": "*"}]
    )
    response = caller.put(f"{NODES}b1/", body(service="orders"), format="json")
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["details"]) == (409, "node_id_taken", {"id": "b1"})
    assert "billing" not in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"address": "not an address!"}, "address"),
        ({"address": "-bad-.example"}, "address"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"port": "80"}, "port"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": ["a"]}, "metadata"),
        ({"endpoints": [{"request": {}}]}, "endpoints"),
        ({"interval": 0}, "interval"),
        ({"interval": 10, "ttl": 5}, "ttl"),
        ({"service": "bad/name"}, "service"),
        ({"version": ""}, "version"),
        # names no policy rule can hold: were a 500 (PolicyError) before validation
        ({"service": "\u00f6rders"}, "service"),
        ({"service": "or ders"}, "service"),
        # "$" also matched before a trailing newline
        ({"address": "host\n.example.com"}, "address"),
        ({"address": "fe80::1%a b"}, "address"),
        ({"address": "fe80::1%\ud800"}, "address"),
        # NUL and lone surrogates: PostgreSQL refuses them (500); a surrogate fails everywhere
        ({"metadata": {"zone": "eu\x00"}}, "metadata"),
        ({"metadata": {"zone": "\ud800"}}, "metadata"),
        ({"service_metadata": {"\x00": "x"}}, "service_metadata"),
        ({"endpoints": [{"name": "a", "request": {"type": "\x00"}}]}, "endpoints"),
        ({"endpoints": [{"name": "a", "response": {"\udfff": {}}}]}, "endpoints"),
    ],
)
def test_register__bad_input__is_400_naming_the_field(writer, overrides, field):
    # when (ASCII-only JSON: a lone surrogate travels as its \u escape, as a client would send it)
    response = writer.put(f"{NODES}orders-a/", json.dumps(body(**overrides)), content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"]
    # and the registry is unchanged
    assert not Node.objects.exists() and not Service.objects.exists()


def test_register__every_bad_field_is_named_at_once_and_types_are_not_coerced(writer):
    # a blank version used to hide the rest: the shape check stopped before the registry's rules
    bad = {"service": "bad name!", "address": "not an ip!!", "port": 70000, "version": "", "ttl": "x"}
    response = writer.put(f"{NODES}orders-a/", body(**bad, metadata={"a": 1}), format="json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details) == {"service", "address", "port", "version", "ttl", "metadata"}
    # numbers are not names (a CharField made 123 into "123"), and missing fields are named together
    response = writer.post(NODES, {"service": 123, "id": 7}, format="json")
    details = response.json()["error"]["details"]
    assert set(details) == {"service", "id", "address", "port"}
    assert details["address"] == details["port"] == ["This field is required."]
    assert writer.post(NODES, body(id=""), format="json").json()["error"]["details"].keys() == {"id"}
    assert not Node.objects.exists()


def test_register__endpoints_nested_too_deep__is_400_not_500(writer):
    # given: nesting the JSON parser takes, but too deep to store (json.dumps hit the recursion limit)
    depth = 800
    text = (
        '{"service": "orders", "address": "10.1.2.3", "port": 8080,'
        f' "endpoints": [{{"name": "a", "request": {"[" * depth}{"]" * depth}}}]}}'
    )
    # when
    response = writer.put(f"{NODES}orders-a/", text, content_type="application/json")
    # then
    assert response.status_code == 400, response.content
    assert "endpoints" in response.json()["error"]["details"]
    assert not Node.objects.exists() and not Service.objects.exists()


def test_register__longest_interval_without_ttl__is_accepted_with_the_longest_ttl(writer, committed):
    # when: interval 86400 is allowed, but its default TTL (3 x interval) was refused as a bad "ttl"
    with committed():
        response = writer.put(f"{NODES}orders-a/", body(interval=86_400), format="json")
    # then
    assert response.status_code == 201, response.content
    assert (response.json()["interval"], response.json()["ttl"]) == (86_400, 86_400)


@pytest.mark.parametrize("interval", [0, 1.5, "10"])
def test_register__bad_interval_without_ttl__names_only_the_interval(writer, interval):
    response = writer.put(f"{NODES}orders-a/", body(interval=interval), format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"interval"}


def test_register__metadata_over_the_size_limit__is_400(writer, settings):
    # given
    settings.DISCOVERY_MAX_METADATA_BYTES = 64
    # when
    response = writer.put(f"{NODES}orders-a/", body(metadata={"k": "v" * 100}), format="json")
    # then
    assert response.status_code == 400
    assert "metadata" in response.json()["error"]["details"]


def test_register__ipv6_and_hostname__are_accepted(writer, committed):
    with committed():
        assert writer.put(f"{NODES}a/", body(address="::1"), format="json").status_code == 201
        assert writer.put(f"{NODES}b/", body(address="orders-1.internal"), format="json").status_code == 201


def test_register__read_scope_only__is_403(reader):
    response = reader.put(f"{NODES}orders-a/", body(), format="json")
    assert response.status_code == 403
    assert not Node.objects.exists()


def test_register__outsider__is_403(outsider):
    assert outsider.put(f"{NODES}orders-a/", body(), format="json").status_code == 403


def test_deregister__removes_the_node_and_empty_service(writer, make_node, committed):
    # given
    make_node(node_id="orders-a")
    # when
    with committed():
        response = writer.delete(f"{NODES}orders-a/")
    # then
    assert response.status_code == 204
    assert not Node.objects.exists() and not Service.objects.exists()
    assert writer.get(f"{SERVICES}orders/").status_code == 404


def test_deregister__unknown_node__is_404(writer):
    response = writer.delete(f"{NODES}nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_get_node__shows_endpoints_and_last_heartbeat(reader, make_node):
    make_node(node_id="orders-a", endpoints=[{"name": "Orders.List"}])
    response = reader.get(f"{NODES}orders-a/")
    assert response.status_code == 200
    assert response.json()["endpoints"] == [{"name": "Orders.List"}]
    assert response.json()["last_heartbeat"].endswith("Z")


def test_get_node__unknown__is_404(reader):
    assert reader.get(f"{NODES}nope/").status_code == 404


@pytest.mark.parametrize("node_id", ["a%00", "a%20b", "%C3%A9"])
def test_get_and_delete_node__id_no_node_can_have__is_404(writer, node_id):
    # NUL in a query parameter is a 500 on PostgreSQL
    for response in (writer.get(f"{NODES}{node_id}/"), writer.delete(f"{NODES}{node_id}/")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_list_services__versions_and_node_counts(reader, make_node):
    # given
    make_node("orders", version="1.0")
    make_node("orders", version="1.0")
    make_node("orders", version="2.0")
    make_node("billing")
    # when
    response = reader.get(SERVICES)
    # then
    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["name"] for item in results] == ["billing", "orders"]
    orders = results[1]
    assert orders["nodes"] == 3 and orders["passing"] == 3
    assert [(v["version"], v["nodes"]) for v in orders["versions"]] == [("1.0", 2), ("2.0", 1)]


def test_get_service__all_versions_with_nodes(reader, make_node):
    make_node("orders", version="1.0", node_id="a")
    make_node("orders", version="2.0", node_id="b")
    response = reader.get(f"{SERVICES}orders/")
    assert response.status_code == 200
    document = response.json()
    assert [v["version"] for v in document["versions"]] == ["1.0", "2.0"]
    assert [v["nodes"][0]["id"] for v in document["versions"]] == ["a", "b"]
    assert document["index"] == 2 and response["X-Discovery-Index"] == "2"


def test_get_service__one_version(reader, make_node):
    make_node("orders", version="1.0")
    make_node("orders", version="2.0")
    response = reader.get(f"{SERVICES}orders/?version=2.0")
    assert [v["version"] for v in response.json()["versions"]] == ["2.0"]


def test_get_service__unknown_version__is_404(reader, make_node):
    make_node("orders", version="1.0")
    assert reader.get(f"{SERVICES}orders/?version=9").status_code == 404


def test_get_service__unknown__is_404(reader):
    response = reader.get(f"{SERVICES}nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["%C3%B6rders", "or%20ders", "a:b", "orders%0A", "a%00"])
def test_get_service__name_no_service_can_have__is_404(reader, name):
    # was a 500: the policy check refuses to parse such a resource
    for query in ("", "?index=0&wait=10s"):
        response = reader.get(f"{SERVICES}{name}/{query}")
        assert response.status_code == 404, response.content
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("name", ["%C3%B6rders", "or%20ders", "a%00"])
def test_results__name_no_service_can_have__is_400(reader, name):
    response = reader.get(f"/api/v1/discovery/results/?service={name}")
    assert response.status_code == 400, response.content
    assert "service" in response.json()["error"]["details"]


@pytest.mark.parametrize("prefix", ["a%00", "or%20"])
def test_list_services__bad_prefix__is_400(reader, make_node, prefix):
    # NUL in a query parameter is a 500 on PostgreSQL
    make_node()
    response = reader.get(f"{SERVICES}?prefix={prefix}")
    assert response.status_code == 400
    assert "prefix" in response.json()["error"]["details"]


def test_get_service__label_filters__all_must_match(reader, make_node):
    make_node(node_id="a", metadata={"zone": "eu", "tier": "gold"})
    make_node(node_id="b", metadata={"zone": "eu", "tier": "free"})
    make_node(node_id="c", metadata={"zone": "us", "tier": "gold"})
    response = reader.get(f"{SERVICES}orders/?label=zone:eu&label=tier:gold")
    assert [n["id"] for n in response.json()["versions"][0]["nodes"]] == ["a"]


def test_get_service__bad_label__is_400(reader, make_node):
    make_node()
    response = reader.get(f"{SERVICES}orders/?label=nocolon")
    assert response.status_code == 400
    assert "label" in response.json()["error"]["details"]


def test_get_service__write_scope_only__is_403(api_client, make_node):
    make_node()
    assert api_client("discovery:write").get(f"{SERVICES}orders/").status_code == 403


def test_registry_state__counts(reader, make_node):
    make_node()
    response = reader.get("/api/v1/discovery/registry/")
    assert response.json() | {"degraded_state": None} == {
        "degraded": False,
        "degraded_state": None,
        "services": 1,
        "nodes": 1,
        "passing": 1,
    }
