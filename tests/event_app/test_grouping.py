"""Group commit of small publishes (event_app.grouping)."""

from __future__ import annotations

import threading
from unittest.mock import Mock

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from event_app import grouping, selectors, services
from event_app.cloudevents import EventIn
from event_app.models import Delivery, Event, EventCount


def event(event_id: str, type: str = "order.created") -> EventIn:
    return EventIn(event_id=event_id, source="/shop", type=type, data={"n": event_id})


def test_group__each_request_gets_its_own_results(db):
    jobs = [grouping._Job([event("a"), event("b")]), grouping._Job([event("c")])]
    grouping.GroupCommitter()._write(jobs)
    assert [[s.event.event_id for s in job.result] for job in jobs] == [["a", "b"], ["c"]]
    assert all(s.created for job in jobs for s in job.result)
    assert all(job.done.is_set() and job.error is None for job in jobs)
    assert Event.objects.count() == 3


def test_group__an_event_sent_by_two_requests__created_for_the_first_only(db):
    jobs = [grouping._Job([event("a")]), grouping._Job([event("a"), event("b")])]
    grouping.GroupCommitter()._write(jobs)
    assert [s.created for s in jobs[0].result] == [True]
    assert [(s.event.event_id, s.created) for s in jobs[1].result] == [("a", False), ("b", True)]
    assert jobs[0].result[0].event.pk == jobs[1].result[0].event.pk
    assert Event.objects.count() == 2


def test_group__a_failing_request__fails_alone(db, monkeypatch):
    real_store = services.events_store

    def store(*, events):
        if any(e.type == "bad.type" for e in events):
            raise RuntimeError("refused")
        return real_store(events=events)

    monkeypatch.setattr(services, "events_store", store)
    jobs = [
        grouping._Job([event("a")]),
        grouping._Job([event("x", type="bad.type")]),
        grouping._Job([event("b")]),
    ]
    grouping.GroupCommitter()._write(jobs)
    assert isinstance(jobs[1].error, RuntimeError)
    assert jobs[0].error is None and jobs[2].error is None
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b"]


def test_writer__an_unexpected_failure__fails_its_requests_and_keeps_serving(monkeypatch):
    committer = grouping.GroupCommitter()
    monkeypatch.setattr(services, "events_store", lambda *, events: [])  # no database here
    monkeypatch.setattr(grouping, "_hand_out", lambda stored, jobs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        committer.store([event("a")])
    monkeypatch.undo()
    assert committer._pid is not None
    thread_alive = [t for t in threading.enumerate() if t.name == "events-group-commit"]
    assert thread_alive and all(t.is_alive() for t in thread_alive)


def test_groupable__not_inside_a_callers_transaction_nor_for_batches(db, settings):
    # the test runs inside a transaction: its events must be part of it
    assert connection.in_atomic_block
    assert not grouping.groupable([event("a")])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="group commit runs on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_group_commit__concurrent_publishes__all_stored_once_and_answered():
    assert grouping.groupable([event("a")])
    assert not grouping.groupable([event(str(i)) for i in range(grouping.MAX_GROUPED_EVENTS + 1)])
    answers: dict[int, list] = {}

    def publish(i: int) -> None:
        answers[i] = services.events_store_grouped(events=[event(f"e{i}"), event("shared")])
        connection.close()

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Event.objects.filter(source="/shop").count() == 25
    assert all(answers[i][0].created and answers[i][0].event.event_id == f"e{i}" for i in range(24))
    assert sum(answers[i][1].created for i in range(24)) == 1  # "shared" created exactly once


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the counters join the insert on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_store__no_webhook_takes_the_events__one_statement_is_the_transaction():
    selectors.webhook_filters()  # loaded once, then served from memory
    with CaptureQueriesContext(connection) as queries:
        stored = services.events_store(events=[event("a"), event("b", type="order.paid")])
    assert len(queries) == 1  # no BEGIN, no COMMIT: in autocommit the statement is its own transaction
    assert [s.created for s in stored] == [True, True]
    assert Event.objects.filter(source="/shop").count() == 2
    counts = EventCount.objects.filter(dimension="type").values_list("key", flat=True)
    assert sorted(counts) == ["order.created", "order.paid"]


@pytest.mark.django_db(transaction=True)
def test_store__a_webhook_takes_an_event__the_events_and_deliveries_commit_together(monkeypatch):
    subscription = services.subscription_create(
        name="hook", sink="webhook", url="http://127.0.0.1:9/hook", types=["order.paid"]
    )
    monkeypatch.setattr(services.Delivery.objects, "bulk_create", Mock(side_effect=RuntimeError("disk full")))
    with pytest.raises(RuntimeError):
        services.events_store(events=[event("a"), event("b", type="order.paid")])
    assert not Event.objects.filter(source="/shop").exists()  # nothing without its delivery
    monkeypatch.undo()
    services.events_store(events=[event("a"), event("b", type="order.paid")])
    assert Delivery.objects.get(subscription=subscription).event.event_id == "b"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a server-side disconnect")
@pytest.mark.django_db(transaction=True)
def test_writer__its_kept_connection_was_closed_by_the_server__writes_on_a_new_one():
    writer = grouping.GroupCommitter()
    writer._write([grouping._Job([event("a")])])
    other = connections["default"].copy()
    try:
        with other.cursor() as cursor:  # end the writer's session from another one
            cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    finally:
        other.close()
    job = grouping._Job([event("b")])
    writer._write([job])
    assert job.error is None and [s.created for s in job.result] == [True]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["a", "b"]
