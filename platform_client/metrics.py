"""Counters, gauges and histograms with labels: exposed for Prometheus at ``/metrics``
(prometheus-client, ``[prometheus]`` extra) and/or pushed to statsd with tags, as the original
offered.

```python
from platform_client.metrics import Metrics

metrics = Metrics("orders", statsd="127.0.0.1:8125")  # statsd optional
placed = metrics.counter("orders_placed_total", "Orders placed.", labels=("channel",))
placed.labels(channel="web").inc()
latency = metrics.histogram("checkout_seconds", "Checkout time.")
with latency.time():
    ...
app = metrics.wsgi_app()  # or asgi_app(): serve it at /metrics
```

**Several worker processes** (gunicorn, granian, ``platform serve``): call
:func:`prepare_multiprocess` in the parent *before* the workers start (it wipes the directory:
files left by a previous run would otherwise be summed in forever, and sets
``PROMETHEUS_MULTIPROC_DIR``, which prometheus-client reads when first imported), and
:func:`mark_dead` with each worker's pid when it exits (its live gauges leave the sums).  The
``/metrics`` handler then sums every process's files.

statsd lines carry DogStatsD tags (``orders.placed:1|c|#channel:web,service:orders``); they are
sent over UDP, never block, and a send that fails is counted in ``Metrics.statsd.errors``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Metrics", "StatsdClient", "mark_dead", "prepare_multiprocess"]


def prepare_multiprocess(directory: str | Path) -> Path:
    """Empty ``directory`` (created if missing) and point prometheus-client at it."""
    path = Path(directory)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def mark_dead(pid: int, directory: str | Path | None = None) -> None:
    """A worker exited: drop its live gauges (prometheus-client's ``mark_process_dead``)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory) if directory else None)


#: Characters that end a statsd field or a DogStatsD tag: replaced in names, tag keys and values.
_RESERVED = str.maketrans({c: "_" for c in "|,#\n\r"})
#: Prometheus's grammar for metric and label names, checked whatever the backend, so a service
#: that sends to statsd alone cannot declare what Prometheus would refuse later.
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def statsd_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``host``: port 8125) as a socket address; a ValueError names a bad one."""
    host, colon, port = address.rpartition(":")
    if not colon:
        host, port = address, "8125"
    number = int(port) if port.isdigit() else 0
    if not 0 < number < 65536:
        raise ValueError(f"the statsd address is host:port (PLATFORM_STATSD), not {address!r}")
    return host or "127.0.0.1", number


def _real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: float) -> None:
    """An int or a float, not NaN: NaN would stay in a counter's or a histogram's sum for good
    (nothing can bring it back), and a string (``"3"``) would be read by prometheus-client but
    sent to statsd as it is."""
    if type(value) is not float and type(value) is not int and not _real(value):
        raise TypeError(f"a metric's value is a number, not {type(value).__name__}")
    if value != value:
        raise ValueError("a metric's value is a number, not NaN")


class StatsdClient:
    """Fire-and-forget UDP statsd with DogStatsD tags."""

    def __init__(self, address: str, *, prefix: str = "", tags: dict[str, str] | None = None) -> None:
        self.address = statsd_address(address)
        self.prefix = f"{prefix}." if prefix else ""
        self.tags = dict(tags or {})
        self.errors = 0
        self.sent = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def send(
        self, name: str, value: float, kind: str, tags: dict[str, str] | None = None, *, delta: bool = False
    ) -> None:
        """One line; ``delta``: a signed gauge change (``+3|g``, ``-1|g``)."""
        merged = {
            str(k).translate(_RESERVED): str(v).translate(_RESERVED)
            for k, v in {**self.tags, **(tags or {})}.items()
        }
        suffix = "|#" + ",".join(f"{k}:{v}" for k, v in sorted(merged.items())) if merged else ""
        name = name.translate(_RESERVED).replace(":", "_")
        number: Any = int(value) if float(value).is_integer() else value
        if delta and value >= 0:
            number = f"+{number}"
        try:
            self._socket.sendto(f"{self.prefix}{name}:{number}|{kind}{suffix}".encode(), self.address)
            self.sent += 1
        except OSError:
            self.errors += 1

    def close(self) -> None:
        self._socket.close()


class Metric:
    """One metric (or one label combination of it): ``inc``, ``dec``, ``set``, ``observe``, ``time``."""

    def __init__(
        self,
        owner: Metrics,
        kind: str,
        name: str,
        prom: Any,
        labels: dict[str, str],
        label_names: tuple[str, ...] = (),
    ) -> None:
        self.owner, self.kind, self.name, self._prom, self._labels = owner, kind, name, prom, labels
        #: The label names still to give (none once :meth:`labels` gave them).
        self._label_names = label_names

    def labels(self, **values: str) -> Metric:
        """The metric for one value of each of its labels (all of them, as declared)."""
        if set(values) != set(self._label_names):
            declared = ", ".join(self._label_names) or "no labels (or they are given already)"
            raise ValueError(f"{self.name} takes {declared}; got {', '.join(sorted(values)) or 'none'}")
        prom = self._prom.labels(**values) if self._prom is not None else None
        return Metric(self.owner, self.kind, self.name, prom, {**self._labels, **values})

    def _statsd(self, value: float, kind: str, *, delta: bool = False) -> None:
        if self.owner.statsd is not None:
            self.owner.statsd.send(self.name, value, kind, self._labels, delta=delta)

    def _check(self, value: float) -> None:
        if self._label_names:
            raise ValueError(f"{self.name} has labels: .labels({', '.join(self._label_names)}) first")
        _number(value)

    def inc(self, amount: float = 1) -> None:
        if self.kind == "histogram":
            raise TypeError("histograms observe")
        self._check(amount)
        if self.kind == "counter" and amount < 0:  # prometheus-client says so too; statsd alone did not
            raise ValueError(f"counters only go up: inc({amount!r})")
        if self._prom is not None:
            self._prom.inc(amount)
        if self.kind == "counter":
            self._statsd(amount, "c")
        else:
            self._statsd(amount, "g", delta=True)

    def dec(self, amount: float = 1) -> None:
        if self.kind != "gauge":
            raise TypeError("only gauges go down")
        self._check(amount)
        if self._prom is not None:
            self._prom.dec(amount)
        self._statsd(-amount, "g", delta=True)

    def set(self, value: float) -> None:
        if self.kind != "gauge":
            raise TypeError("only gauges are set")
        self._check(value)
        if self._prom is not None:
            self._prom.set(value)
        self._statsd(value, "g")

    def observe(self, value: float) -> None:
        if self.kind != "histogram":
            raise TypeError("only histograms observe")
        self._check(value)
        if self._prom is not None:
            self._prom.observe(value)
        if self.owner.statsd is not None:
            self.owner.statsd.send(self.name, round(value * 1000, 3), "ms", self._labels)

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - started)


class Metrics:
    """A service's metrics; see the module documentation."""

    def __init__(
        self,
        service: str,
        *,
        statsd: str | None = None,
        prometheus: bool = True,
        registry: Any = None,
    ) -> None:
        self.service = service
        self.statsd = StatsdClient(statsd, prefix=service, tags={"service": service}) if statsd else None
        self._prometheus = None
        if prometheus:
            try:
                import prometheus_client
            except ImportError as exc:
                if self.statsd is None:
                    raise ImportError(
                        'platform_client.metrics needs prometheus-client: pip install "micro-platform-client'
                        '[prometheus]" (or statsd="host:port" alone)'
                    ) from exc
            else:
                self._prometheus = prometheus_client
        self.registry = registry
        if self._prometheus is not None and registry is None:
            self.registry = self._prometheus.CollectorRegistry()
        self._metrics: dict[str, Metric] = {}
        #: Called before each exposition: recorders holding observations not made yet make them.
        self.before_render: list[Any] = []

    def _make(
        self, kind: str, name: str, documentation: str, labels: Sequence[str], **options: Any
    ) -> Metric:
        if name in self._metrics:
            made = self._metrics[name]
            if made.kind != kind:
                raise ValueError(f"{name} is already a {made.kind}")
            return made
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(
                f"a metric's name is letters, digits, _ and : not starting with a digit: {name!r}"
            )
        labels = tuple(labels)
        for label in labels:
            if not isinstance(label, str) or not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(
                    f"{name}: a label's name is letters, digits and _, not a digit or __ first: {label!r}"
                )
        if len(set(labels)) != len(labels):
            raise ValueError(f"{name}: a label is named twice")
        prom = None
        if self._prometheus is not None:
            cls = {"counter": "Counter", "gauge": "Gauge", "histogram": "Histogram"}[kind]
            prom = getattr(self._prometheus, cls)(
                name, documentation or name, list(labels), registry=self.registry, **options
            )
        metric = self._metrics[name] = Metric(self, kind, name, prom, {}, labels)
        return metric

    def counter(self, name: str, documentation: str = "", labels: Sequence[str] = ()) -> Metric:
        return self._make("counter", name, documentation, labels)

    def gauge(
        self,
        name: str,
        documentation: str = "",
        labels: Sequence[str] = (),
        *,
        multiprocess_mode: str = "livesum",
    ) -> Metric:
        """``multiprocess_mode``: how workers' values combine (``livesum`` drops dead workers')."""
        return self._make("gauge", name, documentation, labels, multiprocess_mode=multiprocess_mode)

    def histogram(
        self,
        name: str,
        documentation: str = "",
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
    ) -> Metric:
        options = {"buckets": tuple(buckets)} if buckets else {}
        return self._make("histogram", name, documentation, labels, **options)

    # --- exposition -------------------------------------------------------------------------------
    def _exposed_registry(self) -> Any:
        if self._prometheus is None:
            raise RuntimeError("no Prometheus exposition without prometheus-client")
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return self.registry
        from prometheus_client import multiprocess

        registry = self._prometheus.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)
        return registry

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self._prometheus is None:
            raise RuntimeError(
                "no Prometheus exposition without prometheus-client (metrics made with statsd only)"
            )
        for flush in list(self.before_render):
            flush()
        return self._prometheus.generate_latest(
            self._exposed_registry()
        ), self._prometheus.CONTENT_TYPE_LATEST

    def wsgi_app(self) -> Any:
        def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            body, content_type = self.render()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]

        return app

    def asgi_app(self) -> Any:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            body, content_type = self.render()
            headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return app

    def close(self) -> None:
        if self.statsd is not None:
            self.statsd.close()
