"""The load a fault test holds while it breaks something: writes and reads through both web nodes,
every answer counted, every accepted write remembered so that it can be looked for afterwards.

Each writer thread loops over four writes on its node: a config value
(``PUT .../layers/production/values/w<n>``, its own namespace), a heartbeat of its own discovery
node (registering it again when the heartbeat answers ``404 node_not_registered``, as the SDK
does), an event (``POST /api/v1/events/``, a unique id) and a span (``POST /v1/traces``, a new
trace).  A write is *accepted* when it is answered 2xx; :meth:`Load.lost` finds every accepted
write in the platform afterwards (or names it).  Reader threads read the config (the hot path),
the discovery service document, the router's routes of that service and an event search.

A request that cannot reach its node (connection refused or reset) is counted and the thread
moves on to the other node: the failover a client with a list of addresses does.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

KINDS = ("config", "heartbeat", "event", "span")
#: Per request: a hang is a failure the matrix names (``timeout``).
REQUEST_TIMEOUT = 20.0


@dataclass
class Tally:
    """What one phase saw."""

    name: str
    started: float = field(default_factory=time.monotonic)
    ended: float = 0.0
    attempted: Counter = field(default_factory=Counter)
    accepted: Counter = field(default_factory=Counter)
    write_errors: Counter = field(default_factory=Counter)
    errors_by_kind: Counter = field(default_factory=Counter)
    reads: int = 0
    read_errors: Counter = field(default_factory=Counter)
    #: How long each error took to be answered, in seconds.
    error_seconds: list[float] = field(default_factory=list)
    #: The slowest error: (seconds, "kind status").
    slowest: tuple[float, str] = (0.0, "")
    #: The slowest answer of any kind, success or error (a request that waited out the fault).
    slowest_answer_s: float = 0.0
    bad_shapes: list[str] = field(default_factory=list)
    #: While the fault held (between :meth:`Load.down` and :meth:`Load.up`): reads and writes
    #: sent, and answered 2xx.
    while_down: Counter = field(default_factory=Counter)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def row(self) -> dict[str, Any]:
        accepted = sum(self.accepted.values())
        return {
            "phase": self.name,
            "seconds": round(self.seconds, 1),
            "writes_attempted": sum(self.attempted.values()),
            "writes_accepted": accepted,
            "writes_per_s": round(accepted / max(self.seconds, 0.001), 1),
            "write_errors": dict(sorted(self.write_errors.items())),
            "write_errors_by_kind": dict(sorted(self.errors_by_kind.items())),
            "reads": self.reads,
            "read_errors": dict(sorted(self.read_errors.items())),
            "slowest_error_s": round(max(self.error_seconds, default=0.0), 2),
            "slowest_error": self.slowest[1],
            "median_error_s": round(statistics.median(self.error_seconds), 2) if self.error_seconds else 0.0,
            "slowest_answer_s": round(self.slowest_answer_s, 2),
            "while_down": dict(sorted(self.while_down.items())),
            "bad_error_shapes": self.bad_shapes[:5],
        }


def _status_label(answer: httpx.Response) -> str:
    return str(answer.status_code)


def error_shape_problem(answer: httpx.Response) -> str | None:
    """What is wrong with a 5xx answer, against the documented error shape and ``Retry-After``."""
    try:
        body = answer.json()
    except ValueError:
        return f"{answer.status_code} not JSON: {answer.text[:120]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not {"code", "message", "details"} <= error.keys():
        return f"{answer.status_code} not the error shape: {answer.text[:120]!r}"
    if answer.status_code == 503 and not answer.headers.get("Retry-After", "").isdigit():
        return f"503 without Retry-After: {answer.text[:120]!r}"
    return None


class Load:
    """Writer and reader threads over ``bases`` (the web nodes' addresses)."""

    def __init__(self, bases: list[str], token: str, run: str, writers: int = 4, pause: float = 0.01) -> None:
        self.bases = bases
        self.headers = {"Authorization": f"Bearer {token}"}
        self.run = run
        self.writers = writers
        self.pause = pause
        self.written: dict[str, set] = {kind: set() for kind in KINDS}
        self.tally = Tally("idle")
        self.tallies: list[Tally] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._down = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- names -----------------------------------------------------------------------------------

    def namespace(self, thread: int) -> str:
        return f"faults-{self.run}-t{thread}"

    def node_id(self, thread: int) -> str:
        return f"faults-{self.run}-t{thread}"

    @property
    def service(self) -> str:
        return f"faults-{self.run}"

    @property
    def source(self) -> str:
        return f"/faults/{self.run}"

    # --- running ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        with httpx.Client(base_url=self.bases[0], headers=self.headers, timeout=REQUEST_TIMEOUT) as client:
            for thread in range(self.writers):
                answer = client.post("/api/v1/config/namespaces/", json={"name": self.namespace(thread)})
                assert answer.status_code == 201, answer.text
                answer = client.put(self._layer(thread), json={"data": {"seed": 0}})
                assert answer.status_code in (200, 201), answer.text
                answer = client.put(
                    f"/api/v1/discovery/nodes/{self.node_id(thread)}/", json=self._node(thread)
                )
                assert answer.status_code in (200, 201), answer.text

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._write, args=(thread,), daemon=True, name=f"writer-{thread}")
            for thread in range(self.writers)
        ] + [
            threading.Thread(target=self._read, args=(index,), daemon=True, name=f"reader-{index}")
            for index in range(len(self.bases))
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def down(self) -> None:
        """The fault holds from now: what is sent is also counted under ``while_down``."""
        self._down.set()

    def up(self) -> None:
        self._down.clear()

    def _while_down(self, tally: Tally, what: str, ok: bool) -> None:
        if self._down.is_set():
            tally.while_down[what] += 1
            if ok:
                tally.while_down[f"{what}_answered"] += 1

    @contextmanager
    def phase(self, name: str) -> Iterator[Tally]:
        """Count what happens meanwhile under ``name``."""
        tally = Tally(name)
        with self._lock:
            self.tally = tally
        try:
            yield tally
        finally:
            tally.ended = time.monotonic()
            with self._lock:
                self.tally = Tally("idle")
            self.tallies.append(tally)

    # --- the threads -----------------------------------------------------------------------------

    def _layer(self, thread: int) -> str:
        return f"/api/v1/config/namespaces/{self.namespace(thread)}/layers/production/"

    def _node(self, thread: int) -> dict[str, Any]:
        return {
            "service": self.service,
            "address": f"10.9.0.{thread + 1}",
            "port": 8000,
            "interval": 10,
            "ttl": 60,
        }

    def _write(self, thread: int) -> None:
        node = thread % len(self.bases)
        client = httpx.Client(headers=self.headers, timeout=REQUEST_TIMEOUT)
        number = 0
        try:
            while not self._stop.is_set():
                number += 1
                for kind in KINDS:
                    if self._stop.is_set():
                        break
                    node = self._write_one(client, kind, thread, number, node)
                    time.sleep(self.pause)
        finally:
            client.close()

    def _write_one(self, client: httpx.Client, kind: str, thread: int, number: int, node: int) -> int:
        """One write on ``bases[node]``; the node to use next (the other one if this was unreachable)."""
        base = self.bases[node]
        tally = self.tally
        began = time.monotonic()
        key: Any
        try:
            if kind == "config":
                key = (thread, f"w{number}")
                answer = client.put(f"{base}{self._layer(thread)}values/w{number}", json={"value": number})
            elif kind == "heartbeat":
                key = self.node_id(thread)
                answer = client.post(f"{base}/api/v1/discovery/nodes/{key}/heartbeat/")
                if answer.status_code == 404:
                    answer = client.put(f"{base}/api/v1/discovery/nodes/{key}/", json=self._node(thread))
            elif kind == "event":
                key = f"t{thread}-{number}"
                event = {"type": "faults.load", "source": self.source, "id": key, "data": {"n": number}}
                answer = client.post(f"{base}/api/v1/events/", json=event)
            else:
                key = os.urandom(16).hex()
                answer = client.post(f"{base}/v1/traces", json=_spans(key, thread))
        except httpx.TimeoutException:
            self._count_error(tally, kind, "timeout", began)
            return node
        except httpx.TransportError:
            self._count_error(tally, kind, "unreachable", began)
            return (node + 1) % len(self.bases)
        if 200 <= answer.status_code < 300:
            with self._lock:
                tally.slowest_answer_s = max(tally.slowest_answer_s, time.monotonic() - began)
                self._while_down(tally, "writes", True)
                tally.attempted[kind] += 1
                tally.accepted[kind] += 1
                self.written[kind].add(key)
        else:
            self._count_error(tally, kind, _status_label(answer), began, answer)
        return node

    def _count_error(self, tally: Tally, kind: str, label: str, began: float, answer=None) -> None:
        problem = error_shape_problem(answer) if answer is not None and answer.status_code >= 500 else None
        with self._lock:
            self._while_down(tally, "writes", False)
            tally.attempted[kind] += 1
            tally.write_errors[label] += 1
            tally.errors_by_kind[f"{kind} {label}"] += 1
            took = time.monotonic() - began
            tally.slowest_answer_s = max(tally.slowest_answer_s, took)
            tally.error_seconds.append(took)
            tally.slowest = max(tally.slowest, (took, f"{kind} {label}"))
            if problem:
                tally.bad_shapes.append(f"{kind}: {problem}")

    def _read(self, index: int) -> None:
        node = index
        client = httpx.Client(headers=self.headers, timeout=REQUEST_TIMEOUT)
        paths = [
            f"/api/v1/config/namespaces/{self.namespace(0)}/resolve?env=production",
            f"/api/v1/discovery/services/{self.service}/",
            f"/api/v1/router/routes/{self.service}/",
            f"/api/v1/events/?source={self.source}&page_size=5",
        ]
        try:
            while not self._stop.is_set():
                for path in paths:
                    tally = self.tally
                    began = time.monotonic()
                    try:
                        answer = client.get(self.bases[node] + path)
                        label = None if answer.status_code == 200 else _status_label(answer)
                        problem = error_shape_problem(answer) if answer.status_code >= 500 else None
                    except httpx.TimeoutException:
                        label, problem = "timeout", None
                    except httpx.TransportError:
                        label, problem = "unreachable", None
                        node = (node + 1) % len(self.bases)
                    with self._lock:
                        tally.slowest_answer_s = max(tally.slowest_answer_s, time.monotonic() - began)
                        self._while_down(tally, "reads", not label)
                        tally.reads += 1
                        if label:
                            tally.read_errors[label] += 1
                            tally.error_seconds.append(time.monotonic() - began)
                        if problem:
                            tally.bad_shapes.append(f"read {path}: {problem}")
                    time.sleep(self.pause * 5)
        finally:
            client.close()

    # --- afterwards ------------------------------------------------------------------------------

    def accepted(self, kind: str) -> set:
        """The writes of ``kind`` accepted so far: a copy (the writers go on adding to theirs)."""
        with self._lock:
            return set(self.written[kind])

    def lost(self, base: str) -> dict[str, list]:
        """Every accepted write not found through ``base``, by kind."""
        with self._lock:
            written = {kind: set(keys) for kind, keys in self.written.items()}
        missing: dict[str, list] = {}
        with httpx.Client(base_url=base, headers=self.headers, timeout=60) as client:
            keys_of: dict[int, set] = {}
            for thread, _ in written["config"]:
                if thread not in keys_of:
                    answer = client.get(self._layer(thread))
                    answer.raise_for_status()
                    keys_of[thread] = set(answer.json()["data"])
            missing["config"] = sorted(k for k in written["config"] if k[1] not in keys_of[k[0]])
            missing["heartbeat"] = sorted(
                node
                for node in written["heartbeat"]
                if client.get(f"/api/v1/discovery/nodes/{node}/").status_code != 200
            )
            stored = set(self.stored_events(client))
            missing["event"] = sorted(written["event"] - stored)
            missing["span"] = sorted(written["span"] - self.stored_traces(client, written["span"]))
        return {kind: keys for kind, keys in missing.items() if keys}

    def stored_traces(self, client: httpx.Client, wanted: set[str]) -> set[str]:
        """Which of the ``wanted`` trace ids are stored (Zipkin's traceMany, 100 ids a call)."""
        ids, found = sorted(wanted), set()
        for start in range(0, len(ids), 100):
            batch = [*ids[start : start + 100], "0" * 31 + "1"]  # traceMany wants two ids at least
            answer = client.get("/api/v2/traceMany", params={"traceIds": ",".join(batch)})
            answer.raise_for_status()
            found |= {span["traceId"].rjust(32, "0") for trace in answer.json() for span in trace}
        return found

    def stored_events(self, client: httpx.Client) -> list[str]:
        """The ids of the run's stored events (every page)."""
        ids: list[str] = []
        url: str | None = f"/api/v1/events/?source={self.source}&page_size=1000&order=oldest"
        while url:
            answer = client.get(url)
            answer.raise_for_status()
            page = answer.json()
            ids += [event["event_id"] for event in page["results"]]
            url = page.get("next")
        return ids


def _spans(trace_id: str, thread: int) -> dict[str, Any]:
    now = time.time_ns()
    span = {
        "traceId": trace_id,
        "spanId": os.urandom(8).hex(),
        "name": "faults-op",
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 10**6),
    }
    service = {"key": "service.name", "value": {"stringValue": f"faults-t{thread}"}}
    return {"resourceSpans": [{"resource": {"attributes": [service]}, "scopeSpans": [{"spans": [span]}]}]}
