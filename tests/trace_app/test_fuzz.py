"""Every span parser on hostile input: an answer or ``Undecodable``, never another exception; the
HTTP endpoints answer 4xx, never 5xx."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trace_app.decoding import otlp, zipkin
from trace_app.decoding.common import Undecodable

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=30,
)
HEXISH = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=34)
OTLP_SPAN = st.fixed_dictionaries(
    {},
    optional={
        "traceId": HEXISH | JSON,
        "spanId": HEXISH | JSON,
        "parentSpanId": HEXISH | JSON,
        "name": JSON,
        "kind": st.integers(-2, 9) | JSON,
        "startTimeUnixNano": st.integers(-(2**63), 2**64) | st.text(max_size=25) | JSON,
        "endTimeUnixNano": st.integers(-(2**63), 2**64) | st.text(max_size=25),
        "attributes": JSON | st.lists(st.fixed_dictionaries({"key": st.text(max_size=5), "value": JSON})),
        "events": JSON,
        "links": JSON,
        "status": JSON,
    },
)
ZIPKIN_SPAN = st.fixed_dictionaries(
    {},
    optional={
        "traceId": HEXISH | JSON,
        "id": HEXISH | JSON,
        "parentId": HEXISH | JSON,
        "name": JSON,
        "kind": st.sampled_from(["CLIENT", "SERVER", "x"]) | JSON,
        "timestamp": st.integers(-(2**63), 2**64) | JSON,
        "duration": st.integers(-(2**63), 2**64) | JSON,
        "localEndpoint": JSON,
        "remoteEndpoint": JSON,
        "annotations": JSON,
        "tags": JSON,
        "shared": JSON,
    },
)


def wrapped(spans):
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.lists(OTLP_SPAN, max_size=3).map(wrapped)))
def test_otlp_json__answers_or_refuses(body):
    with contextlib.suppress(Undecodable):
        otlp.decode_json(json.dumps(body).encode())


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.lists(ZIPKIN_SPAN, max_size=3)))
def test_zipkin_json__answers_or_refuses(body):
    with contextlib.suppress(Undecodable):
        zipkin.decode_json(json.dumps(body).encode())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_protobuf__answers_or_refuses(body):
    for decode in (otlp.decode_protobuf, zipkin.decode_protobuf):
        with contextlib.suppress(Undecodable):
            decode(body)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.lists(OTLP_SPAN, max_size=2).map(wrapped), st.lists(ZIPKIN_SPAN, max_size=2)))
def test_endpoints__never_5xx(writer, body):
    for path in ("/v1/traces", "/api/v2/spans"):
        answer = writer.post(path, data=json.dumps(body), content_type="application/json")
        assert answer.status_code < 500, (path, body, answer.content)
