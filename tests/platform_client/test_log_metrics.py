"""platform_client.log (JSON lines with service, node and trace ids; warnings shipped as events)
and platform_client.metrics (Prometheus with multiprocess done right, statsd with tags)."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from platform_client import log
from platform_client.metrics import Metrics, mark_dead, prepare_multiprocess

ROOT = Path(__file__).resolve().parents[2]


class Publisher:
    """Takes events like EventPublisher.publish; ``full`` refuses them as a full buffer does."""

    def __init__(self, full: bool = False) -> None:
        self.full = full
        self.events: list[tuple[str, dict]] = []

    def publish(self, type: str, data: dict, *, subject: str = "") -> str:
        if self.full:
            raise RuntimeError("buffer full")
        self.events.append((type, data))
        return "id"


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_platform_log", False)]


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log__json_lines_with_service_version_node_and_trace_ids():
    out = io.StringIO()
    logger = log.setup("orders", "1.2.0", node="orders-1", stream=out)
    logger.info("placed", order=7)
    with TracerProvider().get_tracer("t").start_as_current_span("checkout") as span:
        logger.info("in a span")
        context = span.get_span_context()
    first, second = lines(out)
    assert first["event"] == "placed" and first["order"] == 7 and first["level"] == "info"
    assert (first["service"], first["version"], first["node"]) == ("orders", "1.2.0", "orders-1")
    assert first["timestamp"].endswith("Z") and "trace_id" not in first
    assert second["trace_id"] == format(context.trace_id, "032x")
    assert second["span_id"] == format(context.span_id, "016x")


def test_log__shipped_subject__control_characters_as_spaces_data_kept():
    # given: the platform refuses an event whose subject holds a control character or a
    # noncharacter (CloudEvents' String), so a multi-line message was never shipped
    shipped = []
    publisher = Publisher()
    publisher.publish = lambda type, data, *, subject="": shipped.append((subject, data["event"]))
    logger = log.setup("orders", stream=io.StringIO(), events=publisher)
    # when
    logger.error("failed:\n\tTraceback\r\x85\ufffe\ud800 end")
    # then
    assert shipped == [("failed:  Traceback     end", "failed:\n\tTraceback\r\x85\ufffe\ud800 end")]


def test_log__to_a_file_and_level_filter(tmp_path):
    path = tmp_path / "orders.jsonl"
    logger = log.setup("orders", file=path, level="warning")
    logger.info("dropped by the level")
    logger.error("kept", code=3)
    structlog.reset_defaults()
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["event"] == "kept" and record["code"] == 3


def test_log__warnings_shipped_as_events_and_a_full_buffer_is_counted():
    publisher = Publisher()
    out = io.StringIO()
    logger = log.setup("orders", stream=out, events=publisher, stdlib=True)
    logger.info("not shipped")
    logger.warning("disk low", free=3, path=Path("/"))
    logging.getLogger("somelib").error("library says %s", "no")
    assert [t for t, _ in publisher.events] == ["log.warning", "log.error"]
    assert publisher.events[0][1]["free"] == 3 and publisher.events[0][1]["path"] == "PosixPath('/')"
    assert publisher.events[1][1]["event"] == "library says no"
    assert len(lines(out)) == 3  # the stdlib record is a JSON line too
    publisher.full = True
    logger.error("not lost silently")
    assert log.shipper().dropped == 1 and log.shipper().shipped == 2
    assert lines(out)[-1]["event"] == "not lost silently"  # still written locally


def strict_json(text: str) -> dict:
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_log__nan_and_infinities_are_written_as_standard_json():
    publisher = Publisher()
    out = io.StringIO()
    logger = log.setup("orders", stream=out, events=publisher, stdlib=True)
    logger.warning("ratio", value=float("nan"), limits=[float("-inf"), {"hi": float("inf")}], ok=1.5)
    logging.getLogger("somelib").warning("gauge %s", 1, extra={"reading": float("nan")})
    first = strict_json(out.getvalue().splitlines()[0])  # Python's bare NaN is no JSON
    assert (first["value"], first["limits"], first["ok"]) == ("NaN", ["-Infinity", {"hi": "Infinity"}], 1.5)
    for line in out.getvalue().splitlines():
        strict_json(line)
    assert publisher.events[0][1]["value"] == "NaN"  # the event API takes standard JSON only
    assert publisher.events[0][1]["limits"] == ["-Infinity", {"hi": "Infinity"}]


def test_log__bad_level():
    with pytest.raises(ValueError, match="level"):
        log.setup("orders", level="loud")
    with pytest.raises(ValueError, match="ship_level is one of"):  # was a KeyError: 'loud'
        log.setup("orders", events=object(), ship_level="loud")


def test_log__a_level_in_the_standard_librarys_case(capsys):
    logger = log.setup("orders", level="WARNING", stream=sys.stdout)
    logger.info("hidden")
    logger.warning("shown")
    assert [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()] == ["shown"]


def test_metrics__counter_gauge_histogram_with_labels_on_metrics_endpoint():
    metrics = Metrics("orders")
    placed = metrics.counter("orders_placed_total", "Orders placed.", labels=("channel",))
    placed.labels(channel="web").inc()
    placed.labels(channel="web").inc(2)
    metrics.gauge("orders_in_flight").set(4)
    with metrics.histogram("checkout_seconds", buckets=(0.1, 1, 10)).time():
        pass
    statuses = []
    body = b"".join(metrics.wsgi_app()({}, lambda status, headers: statuses.append((status, dict(headers)))))
    text = body.decode()
    assert statuses[0][0] == "200 OK" and statuses[0][1]["Content-Type"].startswith("text/plain")
    assert 'orders_placed_total{channel="web"} 3.0' in text
    assert "orders_in_flight 4.0" in text
    assert 'checkout_seconds_bucket{le="0.1"} 1.0' in text
    with pytest.raises(TypeError):
        metrics.counter("orders_placed_total").set(1)
    with pytest.raises(ValueError, match="already a counter"):
        metrics.gauge("orders_placed_total")


def test_metrics__multiprocess__stale_files_wiped_workers_summed_dead_workers_gauges_dropped(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"left by a previous run")
    prepare_multiprocess(directory)
    try:
        assert list(directory.iterdir()) == []
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
        pids = []
        for count in (3, 4):
            out = subprocess.run(
                [sys.executable, "-m", "tests.platform_client.metrics_worker", str(count)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            pids.append(int(out.stdout))
        exposition = subprocess.run(
            [
                sys.executable,
                "-c",
                "from platform_client.metrics import Metrics; print(Metrics('orders').render()[0].decode())",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert 'orders_placed_total{channel="web"} 7.0' in exposition
        assert "orders_in_flight 2.0" in exposition
        for pid in pids:
            mark_dead(pid, directory)
        after = subprocess.run(
            [
                sys.executable,
                "-c",
                "from platform_client.metrics import Metrics; print(Metrics('orders').render()[0].decode())",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert 'orders_placed_total{channel="web"} 7.0' in after  # counters outlive their workers
        assert "orders_in_flight" not in after  # the dead workers' live gauges are gone
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def test_metrics__statsd_lines_with_tags():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    metrics = Metrics("orders", statsd=f"127.0.0.1:{receiver.getsockname()[1]}", prometheus=False)
    metrics.counter("placed", labels=("channel",)).labels(channel="web").inc()
    gauge = metrics.gauge("in_flight")
    gauge.set(5)
    gauge.dec()
    metrics.histogram("checkout").observe(0.25)
    received = [receiver.recv(1024).decode() for _ in range(4)]
    assert received == [
        "orders.placed:1|c|#channel:web,service:orders",
        "orders.in_flight:5|g|#service:orders",
        "orders.in_flight:-1|g|#service:orders",
        "orders.checkout:250|ms|#service:orders",
    ]
    assert metrics.statsd.sent == 4 and metrics.statsd.errors == 0
    metrics.close()
    receiver.close()


def test_metrics__statsd_tag_values_cannot_break_the_line():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    metrics = Metrics("orders", statsd=f"127.0.0.1:{receiver.getsockname()[1]}", prometheus=False)
    metrics.counter("placed", labels=("channel",)).labels(channel="a,b|c#d\ne").inc()
    assert receiver.recv(1024).decode() == "orders.placed:1|c|#channel:a_b_c_d_e,service:orders"
    metrics.close()
    receiver.close()


@pytest.mark.parametrize("address", ["127.0.0.1:99999", "127.0.0.1:abc", "127.0.0.1:", "127.0.0.1:0"])
def test_metrics__a_bad_statsd_address_is_refused_naming_it(address):
    with pytest.raises(ValueError, match="statsd address"):
        Metrics("orders", statsd=address, prometheus=False)


def test_metrics__a_statsd_host_without_port_uses_8125_and_render_without_prometheus_says_why():
    metrics = Metrics("orders", statsd="localhost", prometheus=False)
    assert metrics.statsd.address == ("localhost", 8125)
    with pytest.raises(RuntimeError, match="prometheus-client"):
        metrics.render()
    metrics.close()


def test_metrics__nan_and_a_negative_count_are_refused():
    # inc(nan) made a counter read NaN for good; with statsd alone a negative count was sent
    metrics = Metrics("orders", statsd="127.0.0.1:9", prometheus=False)
    counter, histogram = metrics.counter("placed_total"), metrics.histogram("latency_seconds")
    for call in (lambda: counter.inc(float("nan")), lambda: histogram.observe(float("nan"))):
        with pytest.raises(ValueError, match="NaN"):
            call()
    with pytest.raises(ValueError, match="counters only go up"):
        counter.inc(-5)


@pytest.mark.parametrize("prometheus", [False, True], ids=["statsd-alone", "with-prometheus"])
def test_metrics__a_value_that_is_not_a_number_is_refused(prometheus):
    # "3" was read by prometheus-client and sent to statsd as it was; inc("1") said '<' not supported
    metrics = Metrics("orders", statsd="127.0.0.1:9", prometheus=prometheus)
    counter, gauge, histogram = (
        metrics.counter("placed_total"),
        metrics.gauge("depth"),
        metrics.histogram("s"),
    )
    for call in (counter.inc, gauge.set, gauge.inc, histogram.observe):
        for bad in ("3", None, True, b"1"):
            with pytest.raises(TypeError, match="a metric's value is a number"):
                call(bad)
    counter.inc(2), gauge.set(2.5), histogram.observe(1)
    if prometheus:
        assert "placed_total 2.0" in metrics.render()[0].decode()
    metrics.close()


@pytest.mark.parametrize("prometheus", [False, True], ids=["statsd-alone", "with-prometheus"])
def test_metrics__names_and_labels_are_checked_alike_with_statsd_alone(prometheus):
    # with statsd alone any name went out, labels were not checked, a labelled metric took values
    metrics = Metrics("orders", statsd="127.0.0.1:9", prometheus=prometheus)
    for name in ("placed total", "9lives", "", "héllo"):
        with pytest.raises(ValueError, match="metric's name"):
            metrics.counter(name)
    for labels in (("bad label",), ("__reserved",), ("1st",)):
        with pytest.raises(ValueError, match="label's name"):
            metrics.counter("placed_total", labels=labels)
    with pytest.raises(ValueError, match="named twice"):
        metrics.counter("placed_total", labels=("channel", "channel"))
    placed = metrics.counter("placed_total", labels=("channel", "region"))
    with pytest.raises(ValueError, match="takes channel, region; got channel"):
        placed.labels(channel="web")
    with pytest.raises(ValueError, match="got channel, region, typo"):
        placed.labels(channel="web", region="eu", typo="x")
    with pytest.raises(ValueError, match=r"has labels: \.labels\(channel, region\) first"):
        placed.inc()
    child = placed.labels(channel="web", region="eu")
    child.inc()
    with pytest.raises(ValueError, match="given already"):
        child.labels(channel="app", region="eu")
    metrics.counter("plain_total").inc()
    assert metrics.statsd.sent == 2
    metrics.close()
