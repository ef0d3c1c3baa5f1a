"""The router while Redis is known down (platformsite.cache.Guard): routes are read from the
database; a change is refused whole, so that no cached revision outlives it."""

from __future__ import annotations

import logging
from unittest import mock

import pytest

from router_app.models import Rule
from router_app.services import common
from tests.redis_down import NEEDS_REDIS, redis_known_down

pytestmark = NEEDS_REDIS

ROUTES, RULES = "/api/v1/router/routes/", "/api/v1/router/rules/"
RULE = {"service": "orders", "version": "2.0", "key": "beta", "value": "true", "weight": 20}


@pytest.fixture
def orders(make_node):
    make_node(node_id="orders-a", version="1.0")
    make_node(node_id="orders-b", version="2.0")


def test_routes__redis_known_down__read_from_the_database(reader, orders):
    cached = reader.get(f"{ROUTES}orders/").json()
    with redis_known_down():
        response = reader.get(f"{ROUTES}orders/")
    assert response.status_code == 200, response.content
    fresh = response.json()
    assert (fresh["revision"], fresh["versions"]) == (cached["revision"], cached["versions"])


@pytest.mark.django_db(transaction=True)
def test_rule_change__redis_known_down__503_and_nothing_stored(writer, orders):
    revision = common.stored_revision("orders")
    with redis_known_down():
        response = writer.post(RULES, RULE, format="json")
    assert response.status_code == 503, response.content
    assert int(response.headers["Retry-After"]) >= 1
    assert not Rule.objects.exists()
    assert common.stored_revision("orders") == revision


@pytest.mark.django_db(transaction=True)
def test_rule_change__redis_gone_after_commit__stored_answered_and_read_from_the_database(
    writer, reader, orders, caplog
):
    # given Redis answers inside the transaction, then is found down after the commit
    real = common._announce

    def down_after_commit(*args):
        with redis_known_down():
            real(*args)

    with (
        mock.patch.object(common, "_announce", down_after_commit),
        caplog.at_level(logging.WARNING, logger="router_app.services.common"),
    ):
        response = writer.post(RULES, RULE, format="json")
    # then the stored change is answered as such, and readers see it (no revision was cached)
    assert response.status_code == 201, response.content
    assert "could not be cached" in caplog.text
    assert len(reader.get(f"{ROUTES}orders/").json()["rules"]) == 1
