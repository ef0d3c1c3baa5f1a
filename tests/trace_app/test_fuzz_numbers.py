"""Numbers in text on hostile input (found by fuzzing): digits ``str.isdigit`` takes but ``int``
does not ('²'), doubled signs, other scripts' digits.  OTLP JSON's int64 strings are an answer or a
refusal (never a ValueError, a 500 at /v1/traces); the trace graph page's ``hours`` is read or
ignored; the search page's durations beyond floats ("1e400") and NUL characters are refused by the
form."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trace_app.decoding import otlp
from trace_app.decoding.common import Undecodable

NUMBERS = st.text(
    alphabet=st.characters(categories=["Nd", "No", "Nl"]) | st.sampled_from("-+ 0123456789"), max_size=8
)


def body(start: str, end: str = "5") -> bytes:
    span = {
        "traceId": "0" * 31 + "1",
        "spanId": "0" * 15 + "1",
        "name": "x",
        "startTimeUnixNano": start,
        "endTimeUnixNano": end,
    }
    return json.dumps(
        {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    ).encode()


@settings(max_examples=500, deadline=None)
@given(NUMBERS, NUMBERS)
@example("²", "5")
@example("--1", "5")
@example("1", "١٢")
def test_otlp_json_int64_text__an_integer_or_a_refusal(start, end):
    with contextlib.suppress(Undecodable):
        otlp.decode_json(body(start, end))


@pytest.mark.django_db
@pytest.mark.parametrize("start", ["²", "--1", "1²"])
def test_otlp_ingest__a_time_isdigit_takes_but_int_refuses__4xx_not_500(api_client, start):
    response = api_client("trace:write").post("/v1/traces", body(start), content_type="application/json")

    assert 200 <= response.status_code < 500
    if response.status_code == 200:  # OTLP's partial success: the span is rejected, not stored
        assert int(response.json()["partialSuccess"]["rejectedSpans"]) == 1


@pytest.mark.django_db
def test_graph_page__hours_isdigit_takes_but_int_refuses__the_default(admin_client):
    assert admin_client.get("/ui/trace/graph/", {"hours": "²"}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1e400", "inf", "-Infinity", "nan"])
def test_search_page__a_duration_beyond_floats__the_form_says_so(admin_client, value):
    response = admin_client.get("/ui/trace/", {"min_ms": value})

    assert response.status_code == 200
    assert b"Min duration (ms): " in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["service", "operation", "tag", "word"])
def test_search_page__a_nul_character__the_form_says_so(admin_client, field):
    # PostgreSQL refuses NUL in text: the search reached it (a 500 there)
    response = admin_client.get("/ui/trace/", {field: "a\x00b"})

    assert response.status_code == 200
    assert b"must not contain NUL characters" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1e306", "1e20", "-5"])
def test_search_page__a_duration_out_of_range__the_form_says_so_as_the_api(admin_client, value):
    response = admin_client.get("/ui/trace/", {"max_ms": value})

    assert response.status_code == 200
    assert b"Max duration (ms): " in response.content
    assert b"is not a number of milliseconds from 0 to 1000000000000000" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("digits", ["1" * 5000, "-" + "9" * 4400, "0" * 5000 + "1"])
def test_otlp_ingest__an_int64_text_of_thousands_of_digits__the_span_rejected_not_500(api_client, digits):
    # int() refuses text past 4,300 digits with a ValueError: a 500 at /v1/traces
    response = api_client("trace:write").post("/v1/traces", body(digits), content_type="application/json")

    assert response.status_code == 200
    assert int(response.json()["partialSuccess"]["rejectedSpans"]) == 1
