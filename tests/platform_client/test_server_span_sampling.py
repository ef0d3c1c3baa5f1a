"""The server span's own sampling decision (platform_client.server_span.ServerTracing): for the
samplers it recognises, the span it makes is the one the SDK's ``start_span`` would make; for any
other sampler the SDK decides every request."""

from __future__ import annotations

import itertools
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, get_current_span

from platform_client import server_span
from platform_client.middleware import wsgi

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
#: Trace ids whose low 64 bits are spread over the ratio sampler's range (so some are sampled).
TRACE_IDS = [(n << 64) | (n * 0x1F3D5B79A2C4E6F1 % (1 << 64)) for n in range(1, 41)]


class Sequence(IdGenerator):
    """Ids from fixed sequences, so two tracers given the same ones can be compared."""

    def __init__(self) -> None:
        self.traces, self.spans = iter(TRACE_IDS), itertools.count(0x1000)

    def generate_trace_id(self) -> int:
        return next(self.traces)

    def generate_span_id(self) -> int:
        return next(self.spans)

    def is_trace_id_random(self) -> bool:  # as the SDK's own generator says (W3C level 2 flag)
        return True


def provider(sampler, exporter=None):
    made = TracerProvider(sampler=sampler, id_generator=Sequence())
    if exporter is not None:
        made.add_span_processor(SimpleSpanProcessor(exporter))
    return made


def environ(traceparent=None, tracestate=None):
    made = {"REQUEST_METHOD": "GET", "PATH_INFO": "/a", "QUERY_STRING": "", "wsgi.url_scheme": "http"}
    if traceparent:
        made["HTTP_TRACEPARENT"] = traceparent
    if tracestate:
        made["HTTP_TRACESTATE"] = tracestate
    return made


def described(span):
    context = span.get_span_context()
    return (
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        context.trace_state.to_header(),
        span.is_recording(),
    )


SAMPLERS = {
    "ratio 0.5": lambda: ParentBased(TraceIdRatioBased(0.5)),
    "ratio 0": lambda: ParentBased(TraceIdRatioBased(0.0)),
    "ratio 1": lambda: ParentBased(TraceIdRatioBased(1.0)),
    "parent-based off": lambda: ParentBased(ALWAYS_OFF),
    "parent-based on (the default)": lambda: ParentBased(ALWAYS_ON),
}
PARENTS = [
    (None, None),
    (f"00-{TRACE}-{SPAN}-01", "vendor=a"),
    (f"00-{TRACE}-{SPAN}-00", "vendor=b,other=c"),
    (f"00-{TRACE}-{SPAN}-03", None),
    (f"00-{TRACE}-{SPAN}-02", "vendor=d"),
    ("00-not-a-valid-header", None),
]


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_span_is_the_one_the_sdk_makes(name):
    ours = server_span.ServerTracing(provider(SAMPLERS[name]()))
    sdk_tracer = provider(SAMPLERS[name]()).get_tracer("reference")
    assert ours._resolve(), "this sampler's decision is made by ServerTracing"
    made = []
    for traceparent, tracestate in PARENTS * 8:
        span, token = ours.start_wsgi(environ(traceparent, tracestate), None)
        parent = server_span.parent_context(traceparent, tracestate) or server_span._EMPTY
        expected = sdk_tracer.start_span("GET /a", context=parent, kind=SpanKind.SERVER)
        assert described(span) == described(expected), (traceparent, tracestate)
        made.append(span.is_recording())
        ours.detach(token)
        ours.finish(span, 200)
        expected.end()
    if name == "ratio 0.5":  # both decisions came up: the comparison saw each path
        assert set(made) == {True, False}


def test_a_sampled_new_trace_keeps_the_id_it_was_decided_on_and_nothing_is_left_over():
    exporter = InMemorySpanExporter()
    tracing = server_span.ServerTracing(provider(ParentBased(TraceIdRatioBased(0.5)), exporter))
    decided = []
    for _ in range(20):
        span, token = tracing.start_wsgi(environ(), None)
        tracing.detach(token)
        tracing.finish(span, 200)
        decided.append(span.get_span_context().trace_id)
    assert decided == TRACE_IDS[:20]  # one trace id drawn per request, sampled or not
    recorded = [span.context.trace_id for span in exporter.get_finished_spans()]
    ratio = TraceIdRatioBased(0.5)
    assert recorded == [t for t in TRACE_IDS[:20] if t & ratio.TRACE_ID_LIMIT < ratio.bound]
    other = tracing.tracer.start_span("elsewhere")  # the same tracer, outside the middleware
    assert other.get_span_context().trace_id == TRACE_IDS[20]


class Counting(Sampler):
    """A sampler ServerTracing does not know: it must be asked about every request."""

    def __init__(self) -> None:
        self.asked = 0

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        self.asked += 1
        assert attributes["url.path"] == "/a"  # it sees the span's attributes
        return SamplingResult(Decision.DROP if self.asked % 2 else Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "Counting"


@pytest.mark.parametrize(
    ("make", "recorded", "asked"),
    [
        (Counting, 2, 4),  # asked about each request; it records every other one
        (lambda: ParentBased(Counting()), 0, 0),  # an unsampled parent: its ALWAYS_OFF delegate
        (lambda: ParentBased(ALWAYS_OFF, remote_parent_not_sampled=ALWAYS_ON), 4, None),
    ],
    ids=["own sampler", "parent-based over it", "other delegates"],
)
def test_any_other_sampler_decides_every_request(make, recorded, asked):
    sampler = make()
    exporter = InMemorySpanExporter()
    app = wsgi(handler, trace=True, tracer_provider=provider(sampler, exporter))
    for _ in range(4):
        call(app, environ(f"00-{TRACE}-{SPAN}-00"))
    assert app.tracing._fast is False
    assert len(exporter.get_finished_spans()) == recorded
    if asked is not None:
        counting = sampler if isinstance(sampler, Counting) else sampler._root
        assert counting.asked == asked


def handler(env, start_response):
    context = get_current_span().get_span_context()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{context.trace_id:032x}-{int(context.trace_flags):02x}".encode()]


def call(app, env):
    return b"".join(app(env, lambda status, headers, exc_info=None: None)).decode()


def test_an_unsampled_request_carries_its_trace_to_the_handler():
    app = wsgi(handler, trace=True, tracer_provider=provider(ParentBased(TraceIdRatioBased(0.0))))
    assert call(app, environ(f"00-{TRACE}-{SPAN}-00")) == f"{TRACE}-00"
    trace_id, flags = call(app, environ()).split("-")
    assert int(trace_id, 16) == TRACE_IDS[0] and flags == "02"  # a new trace, its id random
    assert get_current_span().get_span_context().is_valid is False  # nothing left current


def test_the_first_requests_arriving_together_agree_on_one_id_generator():
    tracing = server_span.ServerTracing(provider(ParentBased(TraceIdRatioBased(0.5))))
    start = threading.Barrier(8)

    def first_request():
        start.wait()
        span, token = tracing.start_wsgi(environ(), None)
        tracing.detach(token)
        tracing.finish(span, 200)

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tracing._fast.ids is tracing.tracer.id_generator  # the preset goes where start_span looks
