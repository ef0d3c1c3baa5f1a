"""Ping URLs on hostile input: any ``/ping/...`` path, action, ``rid``, ``create``, method and body
answer 200 ``OK`` (201 ``Created`` when ``?create=1`` made the job), or 400/404 in the error shape
(405 for a method pings do not take); never a 5xx.
A refused ping stores nothing."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor_app import services
from monitor_app.models import Ping, PingKey

KEY = "k" * 30
ACTION = st.one_of(
    st.sampled_from(
        ["", "/start", "/fail", "/log", "/0", "/255", "/256", "/999999999", "/1000000000", "/-1"]
    ),
    st.from_regex(r"\A/[0-9]{1,12}\Z"),
    st.text(max_size=12).map(lambda text: "/" + text),
)
RID = st.one_of(
    st.none(), st.just(""), st.uuids().map(str), st.text(max_size=40), st.just(str(uuid.uuid4()).upper())
)


@pytest.mark.django_db
def test_ping__any_url_rid_and_body__ok_or_4xx(settings_rates):
    job = services.job_create(service="backups", name="nightly", fields={"interval": 3600, "ttl": 600})
    PingKey.objects.create(key=KEY, service="backups")
    anyone = Client()
    targets = st.one_of(
        st.just(str(job.pk)),
        st.just(str(job.pk).upper()),
        st.uuids().map(str),
        st.builds(lambda slug: f"{KEY}/{slug}", st.one_of(st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,70}\Z"))),
        st.builds(lambda key, slug: f"{key}/{slug}", st.from_regex(r"\A[A-Za-z0-9_-]{10,70}\Z"), st.text()),
        st.text(max_size=50),
    )

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        targets,
        ACTION,
        st.sampled_from(["", "/"]),
        RID,
        st.sampled_from([None, "1", "0", "yes"]),
        st.sampled_from(["get", "post", "head", "put", "delete"]),
        st.binary(max_size=300),
    )
    def ping(target, action, slash, rid, create, method, body):
        before, newest = (
            Ping.objects.count(),
            Ping.objects.order_by("-pk").values_list("pk", flat=True).first(),
        )
        params = {key: value for key, value in (("rid", rid), ("create", create)) if value is not None}
        url = "/ping/" + quote(target + action + slash, safe="/")
        if params:
            url += "?" + "&".join(f"{key}={quote(value)}" for key, value in params.items())
        if method == "post":
            response = anyone.post(url, body, content_type="text/plain")
        else:
            response = getattr(anyone, method)(url)
        event(f"{method} {response.status_code}")
        answered = (url, response.status_code, response.content)
        assert response.status_code in (200, 201, 400, 404, 405), answered
        if response.status_code in (200, 201):
            text = b"OK" if response.status_code == 200 else b"Created"
            assert response.content == (b"" if method == "head" else text)
            assert Ping.objects.order_by("-pk").values_list("pk", flat=True).first() != newest  # stored
        else:
            assert Ping.objects.count() == before
            if (
                response.status_code in (400, 404)
                and method != "head"
                and response.get("Content-Type", "") == ("application/json")
            ):
                assert set(response.json()["error"]) == {"code", "message", "details"}

    ping()


@pytest.fixture
def settings_rates(settings):
    """No rate limit in the way of the fuzzing."""
    settings.MONITOR_PING_RATE = "1000000/min"
    settings.MONITOR_PING_CHECK_RATE = "1000000/min"
