"""The hot route of a job's steady success ping and the ping buffer (monitor_app.hot, pingbuffer)."""

from __future__ import annotations

import time
import uuid
from unittest import mock

import pytest
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from monitor_app import hot, services
from monitor_app.models import Check, Ping
from monitor_app.services import engine, loop, pingbuffer
from monitor_app.services.ingest import report_key
from tests.hotpath import Driver, Reply

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: writes drop the cached job


@pytest.fixture(autouse=True)
def memory_buffer(settings):
    settings.MONITOR_PING_BUFFER = "memory"


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def job(db) -> Check:
    return services.job_create(service="backups", name="nightly", fields={"interval": 3600, "ttl": 600})


def steady(driver: Driver, job: Check) -> list[Reply]:
    """The first ping makes the job pass (a write: the shared cache's copy is dropped); the
    second, steady, goes through the full view too, which caches the job for the hot route."""
    replies = [driver.get(f"/ping/{job.pk}") for _ in range(2)]
    assert [(reply.hot, reply.status) for reply in replies] == [(False, 200), (False, 200)]
    return replies


def flush() -> int:
    return services.monitor_tick(now=Check.objects.get().last_report.timestamp() + 1).pings


def test_steady_ping__hot_answer_is_the_full_views(driver, job):
    full = steady(driver, job)[1]
    reply = driver.get(f"/ping/{job.pk}")

    assert reply.hot
    assert reply.comparable() == full.comparable()
    assert reply.body == b"OK" and reply.headers["Ping-Body-Limit"] == "10000"


def test_steady_ping__no_database_query(driver, job, django_assert_num_queries):
    steady(driver, job)
    driver.get(f"/ping/{job.pk}")  # this process's copy of the job

    with django_assert_num_queries(0):
        assert driver.get(f"/ping/{job.pk}").hot


def test_buffered_pings__stored_by_the_state_loop(driver, job):
    steady(driver, job)
    rid = uuid.uuid4()
    replies = [
        driver.get(f"/ping/{job.pk}/0?rid={rid}", headers={"User-Agent": "cron"}),
        driver.call("POST", f"/ping/{job.pk}", data=b"42 files", content_type="text/plain"),
    ]
    assert [(reply.hot, reply.status) for reply in replies] == [(True, 200), (True, 200)]
    assert Ping.objects.count() == 2  # only the full view's

    assert flush() == 2

    stored = list(
        Ping.objects.order_by("id").values_list("method", "exit_status", "rid", "user_agent", "body")
    )
    assert stored[2:] == [("GET", 0, rid, "cron", ""), ("POST", None, None, "", "42 files")]
    assert cache.get(report_key(job.pk))[2] == "42 files"  # the last result, as the full view leaves it
    assert flush() == 0


def test_buffered_ping__renews_an_overdue_job_before_it_is_stored(driver, job):
    steady(driver, job)
    assert driver.get(f"/ping/{job.pk}").hot
    now = time.time()
    Check.objects.update(expires_at=engine.to_datetime(now - 1))  # its stored deadline has passed

    assert loop.checks_overdue(now=now) == (1, 0)
    check = Check.objects.get()
    assert check.status == "passing" and check.expires_at.timestamp() > now + 3600


def test_flush_fails__pings_kept_for_the_next_flush(driver, job):
    steady(driver, job)
    for _ in range(3):
        assert driver.get(f"/ping/{job.pk}").hot
    down = mock.patch.object(Ping.objects, "bulk_create", side_effect=RuntimeError("database down"))
    with down, pytest.raises(RuntimeError):
        pingbuffer.pings_flush()
    assert pingbuffer.buffer().size() == 3

    assert pingbuffer.pings_flush() == 3  # e.g. another worker's loop, after a restart
    assert Ping.objects.count() == 5


def test_stale_copy__job_went_late__buffered_ping_recovers_it(
    driver, job, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(hot, "LOCAL_SECONDS", 3600)  # this process's copy stays a while
    steady(driver, job)
    driver.get(f"/ping/{job.pk}")  # this process holds the job as steady
    late = Check.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_tick(now=late.expires_at.timestamp() + 1)
    assert Check.objects.get().status == "critical"

    assert driver.get(f"/ping/{job.pk}").hot
    with django_capture_on_commit_callbacks(execute=True):
        pingbuffer.pings_flush()

    check = Check.objects.get()
    assert check.status == "passing"
    assert check.flips.order_by("-id").first().new == "passing"


def test_buffered_success_then_fail__the_fail_stands(driver, job, django_capture_on_commit_callbacks):
    steady(driver, job)
    assert driver.get(f"/ping/{job.pk}").hot
    with django_capture_on_commit_callbacks(execute=True):
        assert driver.get(f"/ping/{job.pk}/fail").status == 200

    pingbuffer.pings_flush()

    assert Check.objects.get().status == "critical"
    kinds = list(Ping.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["success", "success", "fail", "success"]  # stored in that order, each at its time


def test_deleted_job__its_buffered_pings_dropped(driver, job):
    steady(driver, job)
    assert driver.get(f"/ping/{job.pk}").hot
    Check.objects.all().delete()

    assert pingbuffer.pings_flush() == 1
    assert pingbuffer.buffer().size() == 0 and not Ping.objects.exists()


@pytest.mark.parametrize(
    ("method", "suffix", "status"),
    [
        ("GET", "/start", 200),
        ("GET", "/fail", 200),
        ("GET", "/log", 200),
        ("GET", "/3", 200),
        ("GET", "/256", 400),
        ("GET", "?rid=not-a-uuid", 400),
        ("GET", "?create=1", 200),
        ("HEAD", "", 200),
        ("POST", "", 200),  # no body: the full view's
    ],
)
def test_everything_but_a_steady_success__full_view(driver, job, method, suffix, status):
    steady(driver, job)

    reply = driver.call(method, f"/ping/{job.pk}{suffix}")

    assert (reply.hot, reply.status) == (False, status)


def test_unknown_job__404_from_the_full_view(driver, job):
    steady(driver, job)
    reply = driver.get(f"/ping/{uuid.uuid4()}")

    assert (reply.hot, reply.status) == (False, 404)
    assert reply.json()["error"]["code"] == "check_not_found"


def test_not_steady__full_view(driver, job):
    driver.get(f"/ping/{job.pk}/start")

    reply = driver.get(f"/ping/{job.pk}")

    assert (reply.hot, reply.status) == (False, 200)
    assert Ping.objects.get(kind="success").duration is not None


def test_rate_limited__refused_by_the_full_view(driver, job, settings):
    settings.MONITOR_PING_CHECK_RATE = "3/min"
    steady(driver, job)

    replies = [driver.get(f"/ping/{job.pk}") for _ in range(2)]

    assert [(reply.hot, reply.status) for reply in replies] == [(True, 200), (False, 429)]


def test_no_buffer__every_ping_takes_the_full_view(driver, job, settings):
    settings.MONITOR_PING_BUFFER = "auto"  # the test settings' cache is local memory: no buffer
    steady(driver, job)

    reply = driver.get(f"/ping/{job.pk}")

    assert (reply.hot, reply.status) == (isinstance(caches["default"], RedisCache), 200)


@pytest.mark.skipif(not isinstance(caches["default"], RedisCache), reason="the shared cache is not Redis")
def test_redis_buffer__survives_the_process__stored_once(driver, job, settings):
    settings.MONITOR_PING_BUFFER = "redis"
    pingbuffer.buffer().client.delete(pingbuffer.LIST_KEY)
    steady(driver, job)
    assert driver.get(f"/ping/{job.pk}").hot

    pingbuffer._reset()  # a new process: nothing of the old one's memory
    assert pingbuffer.buffer().last_pings([str(job.pk)])
    assert pingbuffer.pings_flush() == 1
    assert Ping.objects.count() == 3 and pingbuffer.buffer().size() == 0
