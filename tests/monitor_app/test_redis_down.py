"""Job pings while Redis is known down (platformsite.cache.Guard): a steady success is stored with
its deadline on the row instead of the shared cache; a failure is stored and alerted."""

from __future__ import annotations

import time

import pytest

from monitor_app import hot, services
from monitor_app.models import Alert, Check, NodeStatus, Ping
from monitor_app.services import alerts, loop
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
    # and its alert is kept unpublished (the event stream refuses events while Redis is down) ...
    alert = Alert.objects.get(type="monitor.check.failed", subject=str(passing_job.pk))
    assert alert.published_at is None
    # ... until the alerts' outbox publishes it once Redis is back
    assert alerts.alerts_publish(now=time.time() + alerts.OUTBOX_GRACE_SECONDS + 1) == 1
    assert Alert.objects.get(pk=alert.pk).published_at is not None


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


# --- node check reports ------------------------------------------------------------------------------

FAST = {"failures_before_critical": 1, "success_before_passing": 1, "interval": 10, "ttl": 30}


def _report(result: str, now: float, **report) -> dict:
    parsed = services.parse_report(
        {"service": "orders", "node": "n1", "checks": [{"name": "db", "status": result, **FAST}], **report}
    )
    return services.reports_ingest(reports=[parsed], now=now)[0]["checks"][0]


@pytest.fixture
def steady_check() -> Check:
    """A node's check whose passing results change nothing stored (only cached)."""
    started = time.time()
    for offset in range(3):
        _report("passing", started + offset)
    return Check.objects.get(service="orders", node="n1", name="db")


def test_report__redis_known_down__stored_once_its_deadline_is_near_so_none_is_found_late(steady_check):
    now = time.time()
    far = steady_check.expires_at.timestamp()
    # when: a result with the deadline more than half a TTL away, then one within half a TTL
    with redis_known_down():
        first = _report("passing", now)
        unstored = Check.objects.get(pk=steady_check.pk)
        later = far - 10  # 10 s left of a 30 s TTL
        second = _report("passing", later)
    # then both are answered; the first changes nothing stored, the second moves the deadline on
    assert first["status"] == second["status"] == "passing"
    assert unstored.version == steady_check.version
    stored = Check.objects.get(pk=steady_check.pk)
    assert stored.expires_at.timestamp() == pytest.approx(later + 30)
    assert stored.last_report.timestamp() == pytest.approx(later)
    # and the state loop, with Redis back and nothing cached of that time, finds nothing late
    assert loop.checks_overdue(now=far + 1) == (0, 0)
    assert Check.objects.get(pk=steady_check.pk).status == "passing"


def test_report__redis_known_down__a_failure_flips_the_check(steady_check):
    with redis_known_down():
        answer = _report("critical", time.time())
    assert answer == {**answer, "status": "critical", "changed": True}
    assert Check.objects.get(pk=steady_check.pk).status == "critical"


def test_report__after_redis_was_down__a_snapshot_it_kept_from_before_is_not_trusted(steady_check):
    # given: the check failed while Redis was down (a hang: Redis kept the snapshot of a passing
    # check), then its node reports it passing again once Redis answers
    with redis_known_down():
        _report("critical", time.time())
    # when
    answer = _report("passing", time.time())
    # then the result is compared with the row, not with the snapshot from before the failure
    assert answer["status"] == "passing" and answer["changed"] is True
    assert Check.objects.get(pk=steady_check.pk).status == "passing"
    assert not services.ingest._unsure


def test_report__redis_known_down__the_node_status_is_stored(steady_check):
    # given a status stored, and cached as stored, before the outage
    running = {"status": "RUNNING", "info": {"version": "1"}, "interval": 10, "ttl": 30}
    _report("passing", time.time(), status=running)
    # when
    with redis_known_down():
        _report("passing", time.time(), status={**running, "info": {"version": "2"}})
    # then
    assert NodeStatus.objects.get(service="orders", node="n1").info == {"version": "2"}
