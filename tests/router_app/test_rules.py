"""Labels, rules and rate limits: writes, bad input, conflicts named, higher priority wins."""

from __future__ import annotations

import random

import pytest

from platform_client import router_rules
from router_app.models import Label, RateLimit, Rule
from tests.router_app.conftest import allow_only

pytestmark = pytest.mark.django_db

LABELS, RULES, LIMITS = "/api/v1/router/labels/", "/api/v1/router/rules/", "/api/v1/router/ratelimits/"


def definition(**overrides):
    return {"service": "orders", "version": "2.0", "key": "beta", "value": "true", "weight": 20, **overrides}


def test_rule__create_read_change_delete(writer):
    created = writer.post(RULES, definition(priority=5), format="json")
    assert created.status_code == 201, created.content
    rule = created.json()
    assert {k: rule[k] for k in ("service", "version", "key", "value", "weight", "priority")} == {
        **definition(),
        "priority": 5,
    }

    changed = writer.put(f"{RULES}{rule['id']}/", definition(weight=30, priority=5), format="json")
    assert changed.status_code == 200 and changed.json()["weight"] == 30
    assert writer.get(f"{RULES}{rule['id']}/").json()["weight"] == 30
    assert writer.get(RULES, {"service": "orders"}).json()["results"][0]["id"] == rule["id"]

    assert writer.delete(f"{RULES}{rule['id']}/").status_code == 204
    assert not Rule.objects.exists()


def test_label__create_and_list(writer):
    assert writer.post(LABELS, definition(key="zone", value="eu"), format="json").status_code == 201

    listed = writer.get(LABELS).json()["results"]

    assert [(label["key"], label["value"], label["weight"]) for label in listed] == [("zone", "eu", 20)]


@pytest.mark.parametrize(
    "change",
    [
        {"weight": 101},
        {"weight": -1},
        {"weight": "lots"},
        {"key": "Has Space"},
        {"key": "UPPER"},
        {"value": "a,b"},
        {"value": ""},
        {"service": "bad/name"},
        {"version": ""},
        {"priority": 10**9},
        {"value": "nul\x00"},
    ],
)
@pytest.mark.parametrize("url", [LABELS, RULES])
def test_bad_input__is_400_and_stores_nothing(writer, url, change):
    response = writer.post(url, definition(**change), format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"
    assert not Label.objects.exists() and not Rule.objects.exists()


def test_rule__same_priority_other_key__is_409_naming_the_rule(writer):
    first = writer.post(RULES, definition(key="beta", priority=5), format="json").json()

    response = writer.post(RULES, definition(key="country", value="uk", priority=5), format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "rule_conflict"
    assert f"#{first['id']}" in error["message"]
    assert error["details"]["conflicts_with"][0]["id"] == first["id"]
    assert Rule.objects.count() == 1


def test_rule__weights_over_100_for_one_label__is_409_with_the_total(writer):
    writer.post(RULES, definition(version="2.0", weight=60), format="json")

    response = writer.post(RULES, definition(version="3.0", weight=50), format="json")

    assert response.status_code == 409
    assert response.json()["error"]["details"]["total_weight"] == 110
    assert writer.post(RULES, definition(version="3.0", weight=40), format="json").status_code == 201


def test_rule__the_same_rule_twice__is_409_rule_exists_naming_it(writer):
    first = writer.post(RULES, definition(weight=10), format="json").json()

    response = writer.post(RULES, definition(weight=10), format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "rule_exists")
    assert response.json()["error"]["details"]["id"] == first["id"]


def test_rule__the_same_rule_twice_over_half_the_requests__is_409_rule_exists_not_a_sum(writer):
    first = writer.post(RULES, definition(weight=60), format="json").json()

    response = writer.post(RULES, definition(weight=60), format="json")  # itself, not 120%

    assert (response.status_code, response.json()["error"]["code"]) == (409, "rule_exists")
    assert response.json()["error"]["details"]["id"] == first["id"]


def test_rule__an_id_too_long_to_show__is_cut_saying_so(writer):
    response = writer.get(f"{RULES}{'9' * 21}/")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == f"No rule #{'9' * 20}…."


def test_label__same_priority_other_value__is_409(writer):
    writer.post(LABELS, definition(key="zone", value="eu"), format="json")

    response = writer.post(LABELS, definition(key="zone", value="us"), format="json")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "label_conflict")
    assert (
        writer.post(LABELS, definition(key="zone", value="us", priority=1), format="json").status_code == 201
    )


def test_rules__higher_priority_wins():
    # regression: the seed applied labels and rules lowest-priority-wins
    rules = [
        {"version": "1.0", "key": "beta", "value": "true", "weight": 100, "priority": 1},
        {"version": "2.0", "key": "country", "value": "uk", "weight": 100, "priority": 10},
    ]

    followed = router_rules.matching_rules(rules, {"beta": "true", "country": "uk"})

    assert [rule["version"] for rule in followed] == ["2.0"]
    split = router_rules.version_split(followed, {"1.0", "2.0"})
    assert router_rules.choose_version(split, 99.9) == "2.0"


def test_labels__higher_priority_wins_on_a_node():
    labels = [
        {"id": 1, "version": "1.0", "key": "zone", "value": "low", "weight": 100, "priority": 1},
        {"id": 2, "version": "1.0", "key": "zone", "value": "high", "weight": 100, "priority": 5},
    ]

    carried = router_rules.label_nodes(labels, {"1.0": ["a", "b", "c"]})

    assert carried == {node: {"zone": "high"} for node in "abc"}


def test_labels__weight_is_the_share_of_the_versions_nodes():
    labels = [{"id": 1, "version": "1.0", "key": "canary", "value": "yes", "weight": 25, "priority": 0}]
    nodes = [f"n{i}" for i in range(20)]

    carried = router_rules.label_nodes(labels, {"1.0": nodes})

    assert len(carried) == 5
    assert carried == router_rules.label_nodes(labels, {"1.0": list(reversed(nodes))})  # stable choice


@pytest.mark.parametrize("weight", [0, 20, 100])
def test_rule_weight__sends_that_share_within_statistical_bounds(weight):
    # regression: the seed routed weight + 1 percent
    rules = [{"version": "2.0", "key": "beta", "value": "true", "weight": weight, "priority": 0}]
    split = router_rules.version_split(rules, {"1.0", "2.0"})
    draws = random.Random(7)
    count = 20_000

    sent = sum(router_rules.choose_version(split, draws.random() * 100) == "2.0" for _ in range(count))

    share = weight / 100
    bound = 4 * (share * (1 - share) / count) ** 0.5  # four standard deviations
    assert abs(sent / count - share) <= bound
    if weight == 0:
        assert sent == 0


def test_rule__to_a_version_without_nodes__gives_its_share_to_the_default():
    rules = [{"version": "9.9", "key": "beta", "value": "true", "weight": 50, "priority": 0}]

    assert router_rules.version_split(rules, {"1.0"}) == [(None, 100.0)]


def test_writes__refusals(reader, outsider, writer, api_client):
    rule = writer.post(RULES, definition(), format="json").json()

    assert reader.post(RULES, definition(key="x"), format="json").status_code == 403
    assert outsider.get(RULES).status_code == 403
    assert reader.delete(f"{RULES}{rule['id']}/").status_code == 403
    other = api_client("router:read", "router:write")
    allow_only("billing")
    response = other.post(RULES, definition(key="other", priority=9), format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "policy_denied")
    assert other.get(f"{RULES}{rule['id']}/").status_code == 403
    assert other.get(RULES).json()["results"] == []  # the list leaves out services it may not read
    assert Rule.objects.count() == 1


def test_detail__unknown_or_absurd_ids__are_404(writer):
    for pk in ("999", "0", str(2**70)):
        assert writer.get(f"{RULES}{pk}/").status_code == 404
        assert writer.get(f"{LABELS}{pk}/").status_code == 404
        assert writer.get(f"{LIMITS}{pk}/").status_code == 404


def test_rate_limit__set_replace_and_delete(writer):
    body = {"service": "orders", "caller": "checkout", "rate": 5, "burst": 10}

    created = writer.post(LIMITS, body, format="json")
    replaced = writer.post(LIMITS, {**body, "rate": 2.5}, format="json")

    assert (created.status_code, replaced.status_code) == (201, 200)
    assert list(RateLimit.objects.values_list("caller", "rate", "burst")) == [("checkout", 2.5, 10)]
    assert writer.get(LIMITS).json()["results"][0]["rate"] == 2.5
    assert writer.delete(f"{LIMITS}{created.json()['id']}/").status_code == 204
    assert not RateLimit.objects.exists()


@pytest.mark.parametrize(
    "change",
    [{"rate": 0}, {"rate": -1}, {"burst": 0}, {"caller": "bad caller"}, {"caller": ""}, {"rate": "NaN"}],
)
def test_rate_limit__bad_input__is_400(writer, change):
    body = {"service": "orders", "caller": "checkout", "rate": 5, "burst": 10, **change}

    assert writer.post(LIMITS, body, format="json").status_code == 400
    assert not RateLimit.objects.exists()


def test_lists__queries_are_pinned(writer, django_assert_num_queries):
    for number in range(5):
        writer.post(RULES, definition(key="beta", value=f"v{number}"), format="json")
    writer.get(RULES, {"service": "orders"})

    with django_assert_num_queries(1):
        assert len(writer.get(RULES, {"service": "orders"}).json()["results"]) == 5
