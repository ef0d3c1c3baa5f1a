"""Health reports on hostile input: ``parse_report`` gives a report or ``Invalid`` (400
``invalid_report``), never another exception; through the API, ``POST /api/v1/monitor/reports/``
and ``reports/batch/`` answer a success or a 4xx in the error shape, never a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor_app.services import parse_report
from platformsite.api.errors import Invalid

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
NAME = st.one_of(st.from_regex(r"\A[a-z][a-z0-9-]{0,15}\Z"), st.text(max_size=12), JSON)
NUMBER = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 86400, 86401, -1, "5", True]),
)
CHECK = st.fixed_dictionaries(
    {"name": NAME, "status": st.one_of(st.sampled_from(["passing", "OK", "ERROR", "critical", "x"]), JSON)},
    optional={
        "output": st.one_of(st.text(max_size=50), st.just("\x00" * 3), JSON),
        "results": JSON,
        "interval": NUMBER,
        "ttl": NUMBER,
        "critical": JSON,
        "description": st.one_of(st.text(max_size=30), JSON),
        "failures_before_critical": NUMBER,
        "failure_rate": JSON,
        "flap": JSON,
        "depends_on": JSON,
    },
)
STATS = st.fixed_dictionaries(
    {},
    optional={
        "cpu": NUMBER,
        "memory": NUMBER,
        "disk": NUMBER,
        "runtime": NUMBER,
        "threads": NUMBER,
        "seconds": NUMBER,
        "endpoints": st.one_of(
            JSON,
            st.lists(
                st.fixed_dictionaries(
                    {"method": st.text(max_size=10)},
                    optional={"success": NUMBER, "errors": NUMBER, "dropped": NUMBER},
                ),
                max_size=3,
            ),
        ),
    },
)
REPORT = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"service": NAME, "node": NAME},
        optional={
            "checks": st.one_of(st.lists(CHECK, max_size=3), JSON),
            "status": st.one_of(
                st.fixed_dictionaries(
                    {"status": st.sampled_from(["RUNNING", "stopped", "x"])},
                    optional={"info": JSON, "interval": NUMBER, "ttl": NUMBER},
                ),
                JSON,
            ),
            "stats": st.one_of(STATS, JSON),
        },
    ),
)


@settings(max_examples=1000, deadline=None)
@given(REPORT)
def test_parse_report__any_json__a_report_or_invalid(report):
    try:
        parsed = parse_report(report)
    except Invalid as exc:
        event("Invalid")
        assert exc.code == "invalid_report"
        return
    event("parsed")
    assert parsed["service"] == report["service"] and parsed["node"] == report["node"]


@pytest.mark.django_db
def test_api__any_report_and_batch__answers_or_4xx(api_client, settings):
    settings.MONITOR_MAX_BATCH = 50
    reporter = api_client("monitor:read", "monitor:write")

    @settings_(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(REPORT, st.booleans())
    def post(report, batch):
        url, body = (
            ("/api/v1/monitor/reports/batch/", {"reports": [report]})
            if batch
            else (
                "/api/v1/monitor/reports/",
                report,
            )
        )
        try:
            response = reporter.post(url, body, format="json")
        except ValueError:  # NaN or Infinity: no JSON client sends them (parse_report is fuzzed with them)
            return
        event(f"{'batch' if batch else 'one'} {response.status_code}")
        assert response.status_code in (200, 201, 202, 400, 403, 413), (
            response.status_code,
            response.content,
        )
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}

    post()


settings_ = settings
