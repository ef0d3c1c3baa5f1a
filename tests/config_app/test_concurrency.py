"""50 concurrent writers to one layer: every accepted write is in history, every other got 409."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, close_old_connections, connection

from config_app import selectors, services
from config_app.errors import StaleRevision
from config_app.models import Revision

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 50


def read_head() -> int:
    """The layer's head number, as a client reads it before writing.

    The test database on SQLite is in memory with a shared cache, where a read can meet a writer's
    table lock ("database table is locked": no busy wait there, unlike the WAL file the platform
    runs on); the client then simply reads again.
    """
    for _ in range(1000):
        try:
            return selectors.layer_head(selectors.namespace_get("payments"), "default").number
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.002)
    raise AssertionError("the head could not be read")


def test_concurrent_writers__none_lost__stale_ones_get_409(make_namespace, put_layer):
    # Given a layer at revision 1, and 50 writers that each read the head, then write with
    # expected_revision, retrying after a 409 (as the dashboard and SDK users do)
    make_namespace("payments")
    put_layer("payments", "default", {"writer": None})
    barrier = threading.Barrier(WRITERS)
    accepted: dict[tuple[int, int], int] = {}
    rejected: list[tuple[int, int]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        try:
            barrier.wait(timeout=60)
            for attempt in range(500):
                expected = read_head()
                try:
                    revision = services.layer_set(
                        namespace="payments",
                        env="default",
                        data={"writer": writer, "attempt": attempt},
                        author=f"service:w{writer}",
                        expected_revision=expected,
                    )
                except StaleRevision:
                    with lock:
                        rejected.append((writer, attempt))
                else:
                    with lock:
                        accepted[(writer, attempt)] = revision.number
                    return
                finally:
                    connection.close()  # back to the pool (PostgreSQL): writers share 20 connections
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            connection.close()

    # When they race
    threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    close_old_connections()

    # Then every writer got its write in once, every stale attempt got 409 and left no trace
    assert not failures, failures
    assert sorted(writer for writer, _ in accepted) == list(range(WRITERS))
    history = {
        rev.number: (rev.data["writer"], rev.data["attempt"])
        for rev in Revision.objects.filter(namespace__name="payments", env="default", number__gt=1)
    }
    assert history == {number: key for key, number in accepted.items()}
    assert sorted(history) == list(range(2, 2 + WRITERS))
    assert not set(rejected) & set(history.values())
    assert rejected  # the race really happened


def test_concurrent_unconditional_writers__all_accepted_with_distinct_numbers(make_namespace):
    make_namespace("payments")
    numbers: list[int] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(20)

    def write(writer: int) -> None:
        try:
            barrier.wait(timeout=30)
            revision = services.value_set(
                namespace="payments", env="default", path=f"w{writer}", value=writer, author="service:w"
            )
            numbers.append(revision.number)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()

    assert not failures, failures
    assert sorted(numbers) == list(range(1, 21))
    head = selectors.layer_head(selectors.namespace_get("payments"), "default")
    assert head.data == {f"w{i}": i for i in range(20)}  # no path write lost
