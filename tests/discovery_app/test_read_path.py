"""Service lookups from the read cache: index, ETag, 304, zero queries warm, blocking queries."""

from __future__ import annotations

import threading
import time

import pytest

from discovery_app import selectors, services
from platformsite import invalidation
from tests.discovery_app.conftest import NOW
from tests.platformsite.test_invalidation import wait_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/discovery/services/orders/"


def test_lookup__warm__runs_no_query(reader, make_node, django_assert_num_queries):
    # given ten nodes and a first lookup (token and policy warm)
    for _ in range(10):
        make_node()
    assert reader.get(URL).status_code == 200
    # when / then
    with django_assert_num_queries(0):
        response = reader.get(URL)
    assert response.status_code == 200
    assert len(response.json()["versions"][0]["nodes"]) == 10


def test_lookup__filtered_and_warm__runs_no_query(reader, make_node, django_assert_num_queries):
    make_node(metadata={"zone": "eu"})
    reader.get(URL)
    with django_assert_num_queries(0):
        response = reader.get(URL + "?label=zone:eu&passing=true")
    assert len(response.json()["versions"][0]["nodes"]) == 1


def test_lookup__carries_index_and_etag__304_when_unchanged(reader, make_node):
    # given
    make_node()
    first = reader.get(URL)
    # when
    again = reader.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    # then
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert again["X-Discovery-Index"] == first["X-Discovery-Index"] == str(first.json()["index"])


@pytest.mark.parametrize("query", ["", "?passing=true"])
def test_lookup__if_none_match_star__304_when_the_service_exists_404_when_not(reader, make_node, query):
    # given a registered service
    make_node()
    etag = reader.get(URL + query)["ETag"]
    # when If-None-Match: * (RFC 9110 13.1.2: matches any current representation)
    again = reader.get(URL + query, HTTP_IF_NONE_MATCH="*")
    # then the condition is false: 304 with the ETag; an unknown service is still the 404
    assert (again.status_code, again["ETag"]) == (304, etag)
    missing = reader.get("/api/v1/discovery/services/nowhere/" + query, HTTP_IF_NONE_MATCH="*")
    assert missing.status_code == 404


@pytest.mark.parametrize("header", ["W/{etag}", '"1-abc", {etag}', 'W/"x",W/{etag}'])
def test_lookup__if_none_match_weak_or_listed__304(reader, make_node, header):
    make_node()
    etag = reader.get(URL)["ETag"]
    again = reader.get(URL, HTTP_IF_NONE_MATCH=header.format(etag=etag))
    assert (again.status_code, again["ETag"]) == (304, etag)


@pytest.mark.parametrize("header", ["x{etag}x", "{etag}garbage", '"1-{etag}"'])
def test_lookup__if_none_match_merely_containing_the_etag__200(reader, make_node, header):
    make_node()
    etag = reader.get(URL)["ETag"]
    assert reader.get(URL, HTTP_IF_NONE_MATCH=header.format(etag=etag)).status_code == 200


def test_lookup__after_a_change__new_etag_and_200(reader, make_node):
    make_node()
    first = reader.get(URL)
    make_node()
    again = reader.get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert again["ETag"] != first["ETag"]
    assert int(again["X-Discovery-Index"]) == int(first["X-Discovery-Index"]) + 1


def test_lookup__filtered_etag_differs_from_unfiltered(reader, make_node):
    make_node()
    assert reader.get(URL)["ETag"] != reader.get(URL + "?passing=true")["ETag"]


def test_write__invalidates_cache_explicitly(reader, make_node, committed):
    # given a cached document
    make_node(node_id="a")
    reader.get(URL)
    # when a node is deregistered
    with committed():
        services.node_deregister(node_id="a", now=NOW)
    # then the next lookup sees it gone
    assert reader.get(URL).status_code == 404


def test_stale_document_stored_late__is_replaced_by_the_writer_check(make_node):
    # given a document cached at index 1, then a second write whose refresh has not run yet
    make_node(node_id="a")
    stale = selectors.service_entry("orders")
    make_node(node_id="b")
    # when an out-of-date writer stores the old document last and re-checks
    from django.core.cache import cache

    cache.set(selectors.doc_key("orders"), stale)
    entry, _ = selectors.refresh_service("orders")
    # then the newest wins
    assert entry.index == 2
    assert selectors.service_entry("orders").index == 2


def test_blocking_query__returns_at_once_when_index_already_passed(reader, make_node):
    make_node()
    started = time.monotonic()
    response = reader.get(URL + "?index=0&wait=30s")
    assert response.status_code == 200
    assert time.monotonic() - started < 5


def test_blocking_query__times_out_with_the_same_index(reader, make_node):
    make_node()
    response = reader.get(URL + "?index=1&wait=100ms")
    assert response.status_code == 200
    assert response["X-Discovery-Index"] == "1"


def test_blocking_query__returns_when_the_service_changes(reader, make_node, settings):
    # given a watcher blocked at the current index
    make_node(node_id="a")
    assert reader.get(URL).status_code == 200  # token, policy and document warm: no query below
    outcome = {}

    def watch():
        outcome["response"] = reader.get(URL + "?index=1&wait=20s")

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()
    # when the service changes (the shared cache holds its new index and document)
    import dataclasses

    from django.core.cache import cache

    entry = cache.get(selectors.doc_key("orders"))
    changed = dataclasses.replace(entry, index=2, etag=selectors.make_etag("orders", 2))
    cache.set_many({selectors.doc_key("orders"): changed, selectors.index_key("orders"): 2})
    thread.join(timeout=10)
    # then the watcher returns
    assert not thread.is_alive()
    assert outcome["response"].status_code == 200


def test_blocking_query__other_service_change__does_not_wake_it(reader, make_node):
    make_node("orders")
    make_node("billing")
    response = reader.get(URL + "?index=1&wait=200ms")
    assert response["X-Discovery-Index"] == "1"


@pytest.mark.parametrize(
    "query",
    # the last two were ignored
    ["index=x", "index=1&wait=soon", "index=1&wait=-1s", "index=-1", "wait=soon"],
)
def test_blocking_query__bad_parameters__are_400(reader, make_node, query):
    make_node()
    assert reader.get(f"{URL}?{query}").status_code == 400


def test_lookup__local_cache_on__serves_from_process_memory(reader, make_node, settings):
    # given lookups allowed to come from process memory for a while
    settings.DISCOVERY_LOCAL_CACHE_SECONDS = 60
    selectors.forget_local_entries()
    try:
        make_node(node_id="a")
        reader.get(URL)
        # when the shared cache loses the document
        from django.core.cache import cache

        cache.delete(selectors.doc_key("orders"))
        # then the process still answers from memory, and a write in this process replaces it
        assert reader.get(URL).status_code == 200
        make_node(node_id="b")
        assert len(reader.get(URL).json()["versions"][0]["nodes"]) == 2
    finally:
        selectors.forget_local_entries()


def test_lookup__listening__copy_used_until_an_announcement_drops_it(reader, make_node):
    from django.core.cache import cache

    assert wait_for(invalidation.listening)
    make_node(node_id="a")
    first = reader.get(URL).json()
    # the shared entry moves on without this process being told
    moved = selectors.ServiceEntry("orders", 99, '"99-x"', b'{"name":"orders","index":99,"versions":[]}')
    cache.set(selectors.doc_key("orders"), moved)
    assert reader.get(URL).json() == first
    # until the announcement arrives, as the listener thread delivers it
    invalidation._bus.deliver(selectors.TOPIC, "orders")
    assert reader.get(URL).json()["index"] == 99


def test_lookup__change_announced_just_after_the_epoch_check__old_copy_not_kept(make_node, monkeypatch):
    # Given a lookup that read the shared document at index 1 and found no announcement since
    make_node(node_id="a")
    still = invalidation.still

    def still_then_a_change(taken: int) -> bool:
        answer = still(taken)
        monkeypatch.setattr(invalidation, "still", still)
        # When a change is stored and announced before the lookup keeps its copy
        make_node(node_id="b")
        return answer

    monkeypatch.setattr(invalidation, "still", still_then_a_change)
    assert selectors.service_entry("orders").index == 1

    # Then the next lookup answers the new document, not a copy the announcement missed
    assert selectors.service_entry("orders").index == 2


def test_blocking_query__woken_before_the_announcement_arrives__answers_the_new_document(
    reader, make_node, monkeypatch
):
    # Given a watcher's process holding the service's document at index 1 (warm local copy)
    make_node(node_id="a")
    assert reader.get(URL)["X-Discovery-Index"] == "1"
    # and a change whose announcement has not reached this process yet
    monkeypatch.setattr(selectors.invalidation, "announce", lambda topic, key: None)
    make_node(node_id="b")

    # When a blocking query waits on index 1
    response = reader.get(URL + "?index=1&wait=5s")

    # Then the index that woke it is the one answered, with the new node
    assert response["X-Discovery-Index"] == "2"
    nodes = {node["id"] for node in response.json()["versions"][0]["nodes"]}
    assert nodes == {"a", "b"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("delay", [0.0, 0.1], ids=["announced_at_once", "announced_late"])
def test_blocking_query__register_while_watching_many_times__never_answers_the_old_index(
    reader, make_node, monkeypatch, delay
):
    # Given announcements that may reach this process after the new index is in the shared cache
    # (as the Redis listener delivers them), longer than a blocking query's poll when late
    announce = invalidation.announce

    def late_announce(topic: str, key: str) -> None:
        time.sleep(delay)
        announce(topic, key)

    monkeypatch.setattr(invalidation, "announce", late_announce)
    make_node(node_id="n0")
    index = int(reader.get(URL)["X-Discovery-Index"])
    for round_ in range(1, 31):
        # and a watcher blocked at the current index, this process holding that document
        reader.get(URL)
        outcome: dict = {}
        watcher = threading.Thread(
            target=lambda i=index, o=outcome: o.setdefault("r", reader.get(f"{URL}?index={i}&wait=10s"))
        )
        watcher.start()
        time.sleep(0.02)
        # When a node registers
        make_node(node_id=f"n{round_}")
        watcher.join(timeout=15)
        # Then the watcher answers a newer index, holding the new node
        response = outcome["r"]
        answered = int(response["X-Discovery-Index"])
        assert answered > index, (round_, answered)
        assert f"n{round_}" in {node["id"] for node in response.json()["versions"][0]["nodes"]}
        index = answered


def test_lookup__shared_cache_down__read_from_the_database_and_no_copy_kept(reader, make_node, monkeypatch):
    # Redis restarting under load (tests/faults): every service lookup was a 503
    from redis.exceptions import ConnectionError as RedisConnectionError

    class Down:
        def get(self, *args, **kwargs):
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    make_node()
    make_node()
    monkeypatch.setattr(selectors, "cache", Down())
    selectors.forget_local_entries()

    response = reader.get(URL)

    assert response.status_code == 200
    assert len(response.json()["versions"][0]["nodes"]) == 2
    assert response["X-Discovery-Index"] == str(response.json()["index"])
    assert selectors._local == {}


def test_lookup__passing_flag__as_consul_reads_it(reader, make_node):
    make_node()
    flagged, explicit = reader.get(URL + "?passing"), reader.get(URL + "?passing=true")
    assert flagged.status_code == 200 and flagged.json() == explicit.json()  # ?passing alone is true
    assert reader.get(URL + "?passing=false").json() == reader.get(URL).json()
    refused = reader.get(URL + "?passing=maybe")  # was read as false, silently
    assert (refused.status_code, refused.json()["error"]["details"]) == (
        400,
        {"passing": ["true or false (or 1/0, yes/no)."]},
    )
