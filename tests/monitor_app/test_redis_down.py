"""Job pings while Redis is known down (platformsite.cache.Guard): a steady success is stored with
its deadline on the row instead of the shared cache; a failure is stored and alerted."""

from __future__ import annotations

import time

import pytest

from monitor_app import hot, services
from monitor_app.models import Alert, Check, Ping
from monitor_app.services import loop
from tests.hotpath import Driver
from tests.redis_down import NEEDS_REDIS, redis_known_down

pytestmark = [*NEEDS_REDIS, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def passing_job(client) -> Check:
    """A job whose pings are steady: passing, counters at their caps, no run open."""
    job = services.job_create(service="backups", name="nightly", fields={"interval": 3600, "ttl": 600})
    for _ in range(2):
        assert client.get(f"/ping/{job.pk}").status_code == 200
    return Check.objects.get(pk=job.pk)


def test_steady_success_ping__redis_known_down__stored_with_its_deadline_on_the_row(client, passing_job):
    before = Ping.objects.count()
    # when
    with redis_known_down():
        started = time.time()
        responses = [client.get(f"/ping/{passing_job.pk}") for _ in range(3)]
    # then every ping is answered and stored, and the row holds the deadline the last one set
    assert [r.status_code for r in responses] == [200, 200, 200], responses[0].content
    assert Ping.objects.count() == before + 3
    job = Check.objects.get(pk=passing_job.pk)
    assert job.status == "passing"
    assert job.last_report.timestamp() >= started
    assert job.expires_at.timestamp() >= started + 3600
    # and the state loop, with Redis back, does not find the job late
    assert loop.checks_overdue(now=started + 3601) == (0, 0)
    assert Check.objects.get(pk=passing_job.pk).status == "passing"


def test_failure_ping__redis_known_down__stored_flipped_and_alerted(client, passing_job):
    # given: what a flip leaves in the shared cache after commit (the job's snapshot, its service's
    # failing nodes) cannot be stored; the state loop stores them again once Redis is back
    before = Ping.objects.count()
    # when
    with redis_known_down():
        response = client.get(f"/ping/{passing_job.pk}/fail")
    # then the failure is taken, not lost
    assert response.status_code == 200, response.content
    assert Ping.objects.count() == before + 1
    assert Check.objects.get(pk=passing_job.pk).status == "critical"
    # (published to the event stream by the outbox once Redis is back)
    assert Alert.objects.filter(type="monitor.check.failed", subject=str(passing_job.pk)).exists()


def test_steady_ping_on_the_hot_route__redis_known_down__the_full_view_takes_it(passing_job, settings):
    # given pings buffered in Redis, which the hot route cannot reach
    settings.MONITOR_PING_BUFFER = "redis"
    driver = Driver(hot.ROUTES)
    before = Ping.objects.count()
    # when
    with redis_known_down():
        reply = driver.get(f"/ping/{passing_job.pk}")
    # then
    assert (reply.hot, reply.status, reply.body) == (False, 200, b"OK")
    assert Ping.objects.count() == before + 1
