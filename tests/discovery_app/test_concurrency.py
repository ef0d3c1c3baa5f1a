"""Registrations and deregistrations of one service at once, on PostgreSQL (where they overlap):
each answers as if alone, none waits forever on another, and the registry ends as they left it.

Before the registry locked a service's name first, a registration racing the deregistration of
the service's last node failed on the foreign key (the service was deleted under the new node),
and one racing the deregistration of another node could deadlock with it.
"""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from discovery_app import services
from discovery_app.models import Node, Service

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 6
NODES = 8


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write at a time: nothing overlaps")


def register(node_id: str, service: str) -> None:
    services.node_register(node_id=node_id, service=service, address="10.0.0.1", port=8000, ttl=30)


def race(calls: list) -> list[BaseException]:
    """Run the calls at once, each in its own thread and connection; the errors they raised."""
    barrier = threading.Barrier(len(calls))
    failures: list[BaseException] = []

    def run(call) -> None:
        try:
            barrier.wait(timeout=30)
            call()
        except BaseException as exc:  # reported by the test
            failures.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a call never returned"
    return failures


def test_registering_while_the_last_node_leaves__the_new_node_and_its_service_stay():
    for round_ in range(ROUNDS):
        service = f"last-{round_}"
        register(f"{service}-old", service)
        calls = [lambda service=service: services.node_deregister(node_id=f"{service}-old")]
        calls += [lambda i=i, service=service: register(f"{service}-{i}", service) for i in range(NODES)]

        assert race(calls) == []
        assert Node.objects.filter(service__name=service).count() == NODES
        assert Service.objects.filter(name=service).count() == 1


def test_registering_and_deregistering_other_nodes_of_one_service__no_deadlock():
    for round_ in range(ROUNDS):
        service = f"mixed-{round_}"
        for i in range(NODES):
            register(f"{service}-{i}", service)
        calls = [
            lambda i=i, service=service: services.node_deregister(node_id=f"{service}-{i}")
            for i in range(NODES)
        ]
        calls += [lambda i=i, service=service: register(f"{service}-new-{i}", service) for i in range(NODES)]

        assert race(calls) == []
        left = set(Node.objects.filter(service__name=service).values_list("id", flat=True))
        assert left == {f"{service}-new-{i}" for i in range(NODES)}
