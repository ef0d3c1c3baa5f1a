"""JSON types in the router's write APIs: a number field refuses booleans and strings, a boolean
field refuses strings and numbers (DRF's own fields took ``"rate": true`` as 1.0 and
``"enforce": "yes"`` as true), a 400 naming the field that changes nothing."""

from __future__ import annotations

import pytest

from router_app.models import Label, Policy, RateLimit, Rule
from tests.errors import refused

pytestmark = pytest.mark.django_db

LABELS, RULES, LIMITS = "/api/v1/router/labels/", "/api/v1/router/rules/", "/api/v1/router/ratelimits/"
POLICY = "/api/v1/router/services/orders/policy/"
LIMIT = {"service": "orders", "caller": "checkout", "rate": 5, "burst": 10}
DEFINITION = {
    "service": "orders",
    "version": "2.0",
    "key": "beta",
    "value": "true",
    "weight": 20,
    "priority": 1,
}


@pytest.mark.parametrize(
    "change",
    [
        {"rate": True},
        {"rate": "5"},
        {"rate": "2.5"},
        {"rate": 10**400},  # too large for a float
        {"burst": True},
        {"burst": "10"},
        {"burst": 2.5},
        {"burst": 10**400},
    ],
)
def test_rate_limit__a_boolean_or_a_string_for_a_number__400_naming_it_and_the_limit_kept(writer, change):
    assert writer.post(LIMITS, LIMIT, format="json").status_code == 201

    refused(writer.post(LIMITS, {**LIMIT, **change}, format="json"), next(iter(change)))

    assert list(RateLimit.objects.values_list("rate", "burst")) == [(5.0, 10)]


@pytest.mark.parametrize(
    "change", [{"weight": True}, {"weight": "30"}, {"priority": False}, {"priority": "5"}]
)
@pytest.mark.parametrize(("url", "model"), [(LABELS, Label), (RULES, Rule)])
def test_labels_and_rules__a_boolean_or_a_string_for_a_number__400_and_nothing_changed(
    writer, url, model, change
):
    created = writer.post(url, DEFINITION, format="json")
    assert created.status_code == 201, created.content

    refused(writer.post(url, {**DEFINITION, "key": "other", **change}, format="json"), next(iter(change)))
    refused(
        writer.put(f"{url}{created.json()['id']}/", {**DEFINITION, **change}, format="json"),
        next(iter(change)),
    )

    assert list(model.objects.values_list("key", "weight", "priority")) == [("beta", 20, 1)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enforce": "yes"}, "enforce"),
        ({"enforce": "false"}, "enforce"),
        ({"enforce": 0}, "enforce"),
        ({"enforce": 1}, "enforce"),
        ({"interval": True}, "interval"),
        ({"interval": "5"}, "interval"),
        ({"max_ejection_percent": 20.5}, "max_ejection_percent"),
        ({"outlier_detection": {"consecutive_5xx": "3"}}, "outlier_detection"),
        ({"outlier_detection": {"consecutive_5xx": True}}, "outlier_detection"),
    ],
)
def test_policy__a_mistyped_setting__400_naming_it_and_the_policy_kept(writer, make_node, body, field):
    make_node(node_id="orders-1")
    assert writer.patch(POLICY, {"enforce": True, "interval": 10}, format="json").status_code == 200

    refused(writer.patch(POLICY, body, format="json"), field)

    policy = Policy.objects.get(service="orders")
    assert (policy.enforce, policy.interval, policy.consecutive_5xx, policy.max_ejection_percent) == (
        True,
        10,
        5,
        10,
    )


def test_policy__json_booleans_and_numbers__are_taken(writer, make_node):
    make_node(node_id="orders-1")

    response = writer.patch(POLICY, {"enforce": False, "interval": 12.0, "consecutive_5xx": 3}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (
        body["enforce"],
        body["outlier_detection"]["interval"],
        body["outlier_detection"]["consecutive_5xx"],
    ) == (
        False,
        12,
        3,
    )
