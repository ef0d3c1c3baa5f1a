"""Job pings: Healthchecks.io's contract at /ping/..., the key in the URL instead of a token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.test import Client

from event_app.models import Event
from monitor_app import services
from monitor_app.models import Check, Ping, PingKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(db) -> Check:
    return services.job_create(service="backups", name="nightly", fields={"interval": 3600, "ttl": 600})


@pytest.fixture
def anyone() -> Client:
    return Client()  # no credentials at all


def test_ping__success__200_ok_text__check_passes(anyone, job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = anyone.get(f"/ping/{job.pk}")

    assert (response.status_code, response.content, response["Content-Type"]) == (200, b"OK", "text/plain")
    assert response["Ping-Body-Limit"] == "10000"
    job.refresh_from_db()
    assert job.status == "passing"
    assert job.expires_at is not None


@pytest.mark.parametrize("method", ["get", "post", "head"])
def test_ping__every_method__is_a_ping(anyone, job, method):
    assert getattr(anyone, method)(f"/ping/{job.pk}/").status_code == 200
    assert Ping.objects.get().method == method.upper()


def test_ping__fail_and_exit_status__critical__event_published(
    anyone, job, django_capture_on_commit_callbacks
):
    anyone.get(f"/ping/{job.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        assert anyone.get(f"/ping/{job.pk}/3").status_code == 200

    job.refresh_from_db()
    assert (job.status, job.output) == ("critical", "exit status 3")
    assert Event.objects.get(type="monitor.check.failed").data["reason"] == "exit 3"
    assert anyone.get(f"/ping/{job.pk}/0").status_code == 200
    job.refresh_from_db()
    assert job.status == "passing"


def test_ping__start_then_success_with_rid__run_time_measured(job):
    rid = uuid.uuid4()
    common = {"body": "", "method": "GET", "remote_addr": "", "user_agent": ""}
    services.ping_record(check=job, kind="start", exit_status=None, rid=rid, now=1000.0, **common)
    other = uuid.uuid4()
    services.ping_record(
        check=Check.objects.get(pk=job.pk), kind="start", exit_status=None, rid=other, now=1005.0, **common
    )
    services.ping_record(
        check=Check.objects.get(pk=job.pk), kind="success", exit_status=None, rid=rid, now=1042.5, **common
    )

    done = Ping.objects.get(kind="success")
    assert done.duration == 42.5
    assert list(Check.objects.get(pk=job.pk).runs) == [str(other)]


def test_ping__started_run_not_finished_within_grace__late(job, django_capture_on_commit_callbacks):
    common = {"body": "", "method": "GET", "remote_addr": "", "user_agent": "", "rid": None}
    services.ping_record(check=job, kind="success", exit_status=None, now=1000.0, **common)
    services.ping_record(
        check=Check.objects.get(pk=job.pk), kind="start", exit_status=None, now=2000.0, **common
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_tick(now=2000.0 + 601)

    check = Check.objects.get(pk=job.pk)
    assert check.status == "critical"
    assert check.flips.get(new="critical").reason == "late"


def test_period__missed_deadline__late(job, django_capture_on_commit_callbacks):
    common = {"body": "", "method": "GET", "remote_addr": "", "user_agent": "", "rid": None}
    services.ping_record(check=job, kind="success", exit_status=None, now=1000.0, **common)
    services.monitor_tick(now=1000.0 + 3600 + 599)
    assert Check.objects.get(pk=job.pk).status == "passing"
    with django_capture_on_commit_callbacks(execute=True):
        services.monitor_tick(now=1000.0 + 3600 + 601)
    assert Check.objects.get(pk=job.pk).status == "critical"


def test_cron__deadline_is_the_next_run_in_its_time_zone_plus_grace(db):
    job = services.job_create(
        service="backups",
        name="daily",
        fields={"kind": "cron", "schedule": "0 3 * * *", "timezone": "Europe/Riga", "ttl": 900},
    )
    noon = datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp()
    common = {"body": "", "method": "GET", "remote_addr": "", "user_agent": "", "rid": None}
    services.ping_record(check=job, kind="success", exit_status=None, now=noon, **common)

    # 03:00 in Riga (UTC+2 in winter) is 01:00 UTC, plus 15 minutes of grace
    assert Check.objects.get(pk=job.pk).expires_at == datetime(2026, 1, 2, 1, 15, tzinfo=UTC)


def test_ping__body_kept_up_to_the_limit(anyone, job, settings):
    settings.MONITOR_PING_BODY_LIMIT = 100
    anyone.post(f"/ping/{job.pk}/log", "x" * 150, content_type="text/plain")

    assert Ping.objects.get().body == "x" * 100
    assert Check.objects.get(pk=job.pk).status == "unknown"  # a log moves nothing


def test_ping__unknown_check__404_in_error_shape(anyone, job):
    response = anyone.get(f"/ping/{uuid.uuid4()}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "check_not_found"


def test_ping__a_node_check_cannot_be_pinged(anyone, report):
    from tests.monitor_app.conftest import result

    report("orders", "n1", result("db", "passing"))
    assert anyone.get(f"/ping/{Check.objects.get(name='db').pk}").status_code == 404


def test_ping__exit_status_over_255__400(anyone, job):
    for status in ("256", "0256", "99999999999999999999"):
        response = anyone.get(f"/ping/{job.pk}/{status}")

        assert response.status_code == 400, status
        assert response.json()["error"]["code"] == "invalid_exit_status"
    assert not Ping.objects.exists()
    assert anyone.get(f"/ping/{job.pk}/007").status_code == 200
    assert anyone.get(f"/ping/{job.pk}/0001").status_code == 200  # Healthchecks.io's integer route: 1
    assert list(Ping.objects.order_by("id").values_list("exit_status", flat=True)) == [7, 1]


def test_ping__an_unknown_check_is_404_before_its_exit_status_is_read(anyone, db):
    response = anyone.get(f"/ping/{uuid.uuid4()}/999")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "check_not_found")


@pytest.mark.parametrize(
    "path", ["/ping/not-a-uuid", "/ping/short/backup", "/ping/" + "k" * 20 + "/UPPER", "/ping/", "/ping"]
)
def test_ping__a_url_of_neither_shape__404_check_not_found(anyone, db, path):
    for method in (anyone.get, anyone.post, anyone.head):
        response = method(path)

        assert response.status_code == 404, (path, method)
    assert anyone.get(path).json()["error"]["code"] == "check_not_found"


def test_ping__a_check_id_with_an_unknown_action__404_saying_so(anyone, job):
    response = anyone.get(f"/ping/{job.pk}/bogus")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "check_not_found" and "No ping action 'bogus'" in error["message"]


def test_ping__bad_rid__400(anyone, job):
    response = anyone.get(f"/ping/{job.pk}/start?rid=not-a-uuid")

    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_rid")


def test_ping__by_key_and_slug__create_only_when_asked(anyone, db):
    key = services.key_create(service="backups")

    assert anyone.get(f"/ping/{key.key}/weekly").status_code == 404
    created = anyone.get(f"/ping/{key.key}/weekly?create=1")
    assert (created.status_code, created.content) == (201, b"Created")  # as Healthchecks.io answers
    assert anyone.get(f"/ping/{key.key}/weekly?create=1").status_code == 200  # it exists now
    check = Check.objects.get(service="backups", name="weekly")
    assert (check.kind, check.status) == ("period", "passing")
    assert anyone.get(f"/ping/{key.key}/weekly/fail").status_code == 200
    assert Check.objects.get(pk=check.pk).status == "critical"


def test_ping__unknown_key__404(anyone, db):
    PingKey.objects.create(key="k" * 30, service="backups")

    assert anyone.get("/ping/" + "z" * 30 + "/weekly?create=1").status_code == 404
    assert not Check.objects.exists()


def test_ping__rate_limited_per_check(anyone, job, settings):
    settings.MONITOR_PING_CHECK_RATE = "3/min"

    codes = [anyone.get(f"/ping/{job.pk}").status_code for _ in range(5)]

    assert codes == [200, 200, 200, 429, 429]
    assert Ping.objects.count() == 3


def test_ping__the_limit_per_check_counts_every_url_naming_it(anyone, job, settings):
    # each spelling of the id (upper case) and the key/slug URL had a budget of its own
    settings.MONITOR_PING_CHECK_RATE = "3/min"
    key = services.key_create(service="backups")
    urls = [f"/ping/{job.pk}", f"/ping/{str(job.pk).upper()}", f"/ping/{key.key}/nightly"] * 2

    codes = [anyone.get(url).status_code for url in urls]

    assert codes == [200, 200, 200, 429, 429, 429]
    assert Ping.objects.count() == 3


def test_ping__rate_limited_per_address(anyone, db, settings):
    settings.MONITOR_PING_RATE = "2/min"

    codes = [anyone.get(f"/ping/{uuid.uuid4()}").status_code for _ in range(3)]

    assert codes == [404, 404, 429]


def test_steady_success_pings__no_check_write__the_loop_renews_the_deadline(job):
    common = {
        "body": "",
        "method": "GET",
        "remote_addr": "",
        "user_agent": "",
        "rid": None,
        "exit_status": None,
    }
    services.ping_record(check=job, kind="success", now=1000.0, **common)
    version = Check.objects.get(pk=job.pk).version
    # when the job keeps pinging on time
    for t in (4600.0, 8200.0):
        services.ping_record(check=Check.objects.get(pk=job.pk), kind="success", now=t, **common)

    check = Check.objects.get(pk=job.pk)
    assert check.version == version  # the pings are stored; the check's row is not written
    assert Ping.objects.filter(check_ref=job).count() == 3
    # the stored deadline (1000 + 3600 + 600) has passed, but the cached ping renews it
    tick = services.monitor_tick(now=5300.0)
    assert (tick.renewed, tick.expired) == (1, 0)
    assert Check.objects.get(pk=job.pk).expires_at == datetime.fromtimestamp(8200.0 + 4200, UTC)
    # and a job that stops pinging is late all the same
    services.monitor_tick(now=8200.0 + 4201)
    assert Check.objects.get(pk=job.pk).status == "critical"


def test_ping__a_deleted_job__404_not_its_cached_row(anyone, job, django_capture_on_commit_callbacks):
    assert anyone.get(f"/ping/{job.pk}").status_code == 200  # its row is now cached
    with django_capture_on_commit_callbacks(execute=True):
        services.check_delete(check=Check.objects.get(pk=job.pk), now=1000.0)

    assert anyone.get(f"/ping/{job.pk}").status_code == 404


def test_ping__start_then_success_through_the_urls__the_run_is_closed(
    anyone, job, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        anyone.get(f"/ping/{job.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        anyone.get(f"/ping/{job.pk}/start")
    with django_capture_on_commit_callbacks(execute=True):
        anyone.get(f"/ping/{job.pk}")

    assert Check.objects.get(pk=job.pk).runs == {}
    assert Ping.objects.filter(kind="success").order_by("-id").first().duration is not None


def test_pings_list__the_newest_kept_also_before_the_hourly_purge(anyone, job, reader, settings):
    # the list answered every ping stored until the purge trimmed them (120 for a kept 100)
    settings.MONITOR_PINGS_KEPT = 3
    for status in range(5):
        assert anyone.get(f"/ping/{job.pk}/{status}").status_code == 200

    def listed():
        answer = reader.get(f"/api/v1/monitor/checks/{job.pk}/pings/?page_size=100")
        assert answer.status_code == 200, answer.content
        return [ping["exit_status"] for ping in answer.json()["results"]]

    assert listed() == [4, 3, 2]
    assert services.pings_purge() == 2
    assert listed() == [4, 3, 2] and Ping.objects.count() == 3
