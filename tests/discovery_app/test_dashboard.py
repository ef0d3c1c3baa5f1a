"""The discovery dashboard pages (server side); the browser test is tests/e2e/test_discovery_dashboard.py."""

from __future__ import annotations

import pytest

from discovery_app import services
from tests.discovery_app.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, staff_user):
    client.force_login(staff_user)
    return client


def test_index__lists_services_with_versions_and_counts(operator, make_node):
    make_node("orders", version="1.0")
    make_node("orders", version="2.0")
    page = operator.get("/ui/discovery/").content.decode()
    assert 'data-service="orders"' in page
    assert "<code>1.0</code> (1)" in page and "<code>2.0</code> (1)" in page


def test_detail__nodes_and_endpoint_trees(operator, make_node):
    make_node(
        node_id="orders-a",
        metadata={"zone": "eu"},
        endpoints=[
            {"name": "Orders.Create", "request": {"sku": {"type": "string"}}, "response": {"id": "int"}}
        ],
    )
    page = operator.get("/ui/discovery/orders/").content.decode()
    assert 'data-node="orders-a"' in page and "zone=eu" in page
    assert 'data-endpoint="Orders.Create"' in page
    assert '<span class="key">sku</span>' in page


def test_detail__unknown_service__is_404(operator):
    assert operator.get("/ui/discovery/nope/").status_code == 404


def test_fragment__is_the_live_part_only(operator, make_node):
    make_node()
    page = operator.get("/ui/discovery/?fragment=1").content.decode()
    assert "<html" not in page and 'data-service="orders"' in page


def test_degraded__banner_is_shown(operator, make_node, committed):
    for i in range(10):
        make_node(node_id=f"n{i}", interval=10)
    with committed():
        services.registry_sweep(now=NOW + 31)
    assert 'id="degraded-banner"' in operator.get("/ui/discovery/").content.decode()


def test_pages__need_staff(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw-plain-12345")
    client.force_login(user)
    assert client.get("/ui/discovery/").status_code == 302


def test_admin__deleting_a_node__deregisters_it(client, django_user_model, make_node, committed):
    from discovery_app.models import Node, Result

    admin = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(admin)
    make_node(node_id="a")
    with committed():
        response = client.post(
            "/admin/discovery_app/node/a/delete/?_changelist_filters=service__name%3Dorders", {"post": "yes"}
        )
    assert response.status_code == 302  # back to the list it came from (was the admin's index)
    assert response["Location"] == "/admin/discovery_app/node/?service__name=orders"
    assert not Node.objects.exists()
    assert Result.objects.filter(action="delete", reason="admin").exists()
    assert client.get("/admin/discovery_app/node/").status_code == 200
