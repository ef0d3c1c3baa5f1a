"""Stats ingest: windows stored per caller, the newest kept, bad input refused whole, refusals."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from router_app import services
from router_app.models import StatsWindow
from tests.router_app.conftest import allow_only, window

pytestmark = pytest.mark.django_db

STATS = "/api/v1/router/stats/"


def starts() -> list[int]:
    return sorted(int(w.start.timestamp()) for w in StatsWindow.objects.all())


def test_ingest__windows_of_a_known_service__are_stored_under_the_caller(reporter, make_node):
    make_node(node_id="orders-1")

    response = reporter.post(STATS, {"caller": "checkout", "windows": [window()]}, format="json")

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "skipped": []}
    stored = StatsWindow.objects.get()
    assert (stored.caller, stored.service, stored.node, stored.requests) == (
        "checkout",
        "orders",
        "orders-1",
        100,
    )
    assert stored.latency["buckets"] and stored.latency["sum_ms"] == pytest.approx(2000.0)


def test_ingest__without_a_caller__is_stored_under_the_token_subject(reporter, make_node):
    make_node(node_id="orders-1")

    reporter.post(STATS, {"windows": [window()]}, format="json")

    assert StatsWindow.objects.get().caller.startswith("service:")


def test_ingest__more_windows_than_kept__keeps_the_newest(reporter, make_node, settings):
    # regression: the seed kept the oldest 10 windows and dropped the new ones
    settings.ROUTER_KEEP_WINDOWS = 10
    make_node(node_id="orders-1")
    now = int(time.time() // 10 * 10)
    batch = [window(start=now - 10 * age) for age in range(1, 10)]  # 9 windows: room for one more

    reporter.post(STATS, {"caller": "c", "windows": batch}, format="json")
    newer = [window(start=now - 10 * age) for age in (0, -1, -2)]  # three newer windows arrive
    reporter.post(STATS, {"caller": "c", "windows": newer}, format="json")
    services.stats_prune(now=now + 30)

    assert starts() == [now - 10 * age for age in range(7, -3, -1)]  # the 10 newest: the 2 oldest pruned


def test_ingest__one_batch_with_more_windows_than_kept__stores_the_newest(reporter, make_node, settings):
    settings.ROUTER_KEEP_WINDOWS = 10
    make_node(node_id="orders-1")
    now = int(time.time() // 10 * 10)

    response = reporter.post(
        STATS,
        {"caller": "c", "windows": [window(start=now - 10 * age) for age in range(9, -6, -1)]},
        format="json",
    )

    assert response.json()["accepted"] == 10
    assert starts() == [now - 10 * age for age in range(4, -6, -1)]
    assert [s["code"] for s in response.json()["skipped"]] == ["superseded"] * 5


def test_ingest__a_window_sent_again__replaces_the_stored_one(reporter, make_node):
    make_node(node_id="orders-1")
    start = int(time.time() // 10 * 10 - 10)

    reporter.post(STATS, {"caller": "c", "windows": [window(start=start, requests=5)]}, format="json")
    reporter.post(STATS, {"caller": "c", "windows": [window(start=start, requests=7)]}, format="json")

    assert list(StatsWindow.objects.values_list("requests", flat=True)) == [7]


def test_ingest__only_unknown_services__is_404_unknown_service_and_stores_nothing(reporter, make_node):
    make_node(node_id="orders-1")

    response = reporter.post(STATS, {"windows": [window(service="nowhere", node="n-1")]}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_service"
    assert response.json()["error"]["details"] == {"services": ["nowhere"]}
    assert not StatsWindow.objects.exists()


def test_ingest__some_unknown_services__stores_the_rest_and_lists_the_skipped(reporter, make_node):
    make_node(node_id="orders-1")

    response = reporter.post(
        STATS, {"windows": [window(service="nowhere", node="n-1"), window()]}, format="json"
    )

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "skipped": [{"window": 0, "code": "unknown_service", "service": "nowhere"}],
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requests": -1}, "requests"),
        ({"successes": 101}, "requests"),
        ({"errors": -3}, "errors"),
        ({"requests": True}, "requests"),
        ({"requests": 1.5}, "requests"),
        ({"consecutive_5xx": "5"}, "consecutive_5xx"),
        ({"latency": {"buckets": {"999": 1}, "sum_ms": 1}}, "latency"),
        ({"latency": {"buckets": {"3": -1}, "sum_ms": 1}}, "latency"),
        ({"latency": [1, 2]}, "latency"),
        ({"start": "yesterday"}, "start"),
        ({"start": time.time() + 3600}, "start"),
        ({"seconds": 0}, "seconds"),
        ({"node": "bad node"}, "node"),
        ({"node": ""}, "node"),
        ({"service": "bad/name"}, "service"),
        ({"surprise": 1}, "window"),
    ],
)
def test_ingest__a_bad_window__is_400_naming_it_and_nothing_of_the_batch_is_stored(
    reporter, make_node, change, field
):
    make_node(node_id="orders-1")
    bad = {**window(), **change}
    if "successes" in change:
        bad["errors"] = 0

    response = reporter.post(STATS, {"windows": [window(), bad]}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]["fields"]["windows"]["1"]
    assert not StatsWindow.objects.exists()


@pytest.mark.parametrize("body", [[], {"windows": []}, {"windows": "x"}, {"windows": [1]}, "text"])
def test_ingest__a_malformed_batch__is_400(reporter, body):
    response = reporter.post(STATS, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_ingest__refusals(client, api_client, outsider, make_node):
    make_node(node_id="orders-1")
    body = {"windows": [window()]}

    assert client.post(STATS, body, content_type="application/json").status_code == 401
    assert outsider.post(STATS, body, format="json").status_code == 403
    assert api_client("router:read", "router:write").post(STATS, body, format="json").status_code == 403
    # reporting needs read on the service too (the policy's check holds router:read)
    assert api_client("router:report").post(STATS, body, format="json").status_code == 403
    assert not StatsWindow.objects.exists()


def test_ingest__a_policy_denying_the_service__is_403(reporter, make_node):
    make_node(node_id="orders-1")
    allow_only("billing")

    response = reporter.post(STATS, {"windows": [window()]}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "policy_denied"


def test_ingest__twenty_windows__queries_do_not_grow_with_the_batch(
    reporter, make_node, django_assert_max_num_queries
):
    for number in range(20):
        make_node(node_id=f"orders-n{number}")
    reporter.post(STATS, {"windows": [window(node="orders-n0")]}, format="json")  # warm token and caches
    batch = [window(node=f"orders-n{number}") for number in range(20)]

    with django_assert_max_num_queries(4):
        response = reporter.post(STATS, {"windows": batch}, format="json")

    assert response.status_code == 202
    assert StatsWindow.objects.count() == 20


def test_prune__drops_windows_past_the_kept_span(make_node, settings):
    settings.ROUTER_KEEP_WINDOWS, settings.ROUTER_WINDOW_SECONDS = 3, 10
    now = 1_800_000_000
    for age in range(6):
        StatsWindow.objects.create(
            caller="c", service="orders", node="n", endpoint="",
            start=datetime.fromtimestamp(now - 10 * age, UTC), seconds=10, requests=1, successes=1,
            errors=0, timeouts=0, dropped=0, consecutive_5xx=0,
            received=datetime.fromtimestamp(now, UTC),
        )  # fmt: skip

    assert services.stats_prune(now=now) == 2

    assert starts() == [now - 30, now - 20, now - 10, now]


def test_ingest__a_service_that_is_not_a_string__is_400(reporter, make_node):
    make_node(node_id="orders-1")

    response = reporter.post(
        STATS, {"windows": [window(service={"a": 1}), window(service=[1])]}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]["windows"]) == {"0", "1"}
