"""Self-registration of a platform service (what ``runservice <name>`` calls)."""

from __future__ import annotations

import pytest

from discovery_app import services
from discovery_app.models import Node
from discovery_app.selfregister import SelfRegistration, platform_endpoints

pytestmark = pytest.mark.django_db


def test_platform_endpoints__list_the_service_routes():
    names = [endpoint["name"] for endpoint in platform_endpoints("discovery")]
    assert "/api/v1/discovery/services/<str:name>/" in names


def test_self_registration__registers_heartbeats_and_registers_again(committed):
    registration = SelfRegistration(
        name="discovery", address="127.0.0.1", port=8003, node_id="platform.discovery-x"
    )
    with committed():
        registration.register()
    node = Node.objects.get(id="platform.discovery-x")
    assert node.service.name == "platform.discovery" and node.endpoints
    registration.heartbeat()
    with committed():
        services.node_deregister(node_id="platform.discovery-x")
    with committed():
        registration.heartbeat()  # not registered any more: registers again
    assert Node.objects.filter(id="platform.discovery-x").exists()
    with committed():
        registration.stop()
    assert not Node.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_discovery_seed__loads_nodes_with_heartbeats():
    from django.core.management import call_command

    from discovery_app import selectors

    call_command("discovery_seed", "bench", "--nodes", "25", "--interval", "3600")
    assert Node.objects.filter(service__name="bench").count() == 25
    assert len(selectors.last_heartbeats([f"bench-{i}" for i in range(25)])) == 25
    assert len(selectors.service_entry("bench").document()["versions"][0]["nodes"]) == 25


def test_discovery_sweep_command__runs_once_and_reports(make_node, capsys):
    import json

    from django.core.management import call_command

    make_node(node_id="a", interval=1)  # registered long ago (NOW): overdue
    call_command("discovery_sweep")
    assert json.loads(capsys.readouterr().out)["expired"] == 1
