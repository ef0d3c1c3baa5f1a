"""The mixed soak's load (``python -m tests.bench.soak``): the HTTP kinds driven by wrk in
consecutive segments, and the dashboards' websockets held open from this process.

Each HTTP kind is one wrk process at a time (one thread, a few connections, a random pause
before each request: an offered rate, ``harness.wrk_script``) restarted every ``segment``
seconds, so that the record holds p50/p99 per segment (stability over the run) and not only
over the whole run.  A Lua ``response()`` counts the statuses, so errors are reported per
status and not only as wrk's "non-2xx" total.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from tests.bench.harness import BenchError, lua_string, parse_wrk, wrk_script
from tests.bench.heartbeats import heartbeat_script

#: The seeded discovery service whose nodes heartbeat, and the config namespace read and written.
HB_SERVICE = "soak-hb"
CONFIG_PATH = "/api/v1/config/namespaces/bench/resolve?env=production"
CONFIG_WRITE_PATH = "/api/v1/config/namespaces/bench/layers/production/values/soak_tick"
EVENT_TYPE = "soak.tick"
SPAN_SERVICES = ("soak-web", "soak-api", "soak-db", "soak-cache")

#: Appended to every kind's script: count the statuses per thread, print them at the end.
STATUS_LUA = """
local soak_threads = {}
local soak_prior_setup = setup
function setup(thread)
  if soak_prior_setup then soak_prior_setup(thread) end
  table.insert(soak_threads, thread)
end
statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(soak_threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("soak-status %d %d\\n", status, n))
  end
end
"""

#: OTLP JSON: ``spans`` spans of ``traces`` new traces over the soak's services, fresh ids each time.
SPANS_LUA = """
local services = {%(services)s}
local spans, traces = %(spans)d, %(traces)d
local function hex(words)
  local parts = {}
  for i = 1, words do parts[i] = string.format("%%08x", math.random(0, 2147483647)) end
  return table.concat(parts)
end
function request()
  local second = tostring(os.time())
  local ids = {}
  for t = 1, traces do ids[t] = hex(4) end
  local by_service = {}
  for i = 1, spans do
    local service = services[(i %% #services) + 1]
    local start = second .. string.format("%%09d", i * 1000)
    local stop = second .. string.format("%%09d", i * 1000 + 1500000)
    local span = '{"traceId":"' .. ids[(i %% traces) + 1] .. '","spanId":"' .. hex(2) ..
      '","name":"GET /items/' .. (i %% 20) .. '","kind":' .. (2 + i %% 2) ..
      ',"startTimeUnixNano":"' .. start .. '","endTimeUnixNano":"' .. stop ..
      '","attributes":[{"key":"http.route","value":{"stringValue":"/items/' .. (i %% 20) ..
      '"}},{"key":"customer","value":{"stringValue":"c' .. math.random(0, 999) .. '"}}]}'
    by_service[service] = by_service[service] or {}
    table.insert(by_service[service], span)
  end
  local resources = {}
  for service, list in pairs(by_service) do
    table.insert(resources, '{"resource":{"attributes":[{"key":"service.name","value":' ..
      '{"stringValue":"' .. service .. '"}}]},"scopeSpans":[{"scope":{"name":"soak"},"spans":[' ..
      table.concat(list, ",") .. ']}]}')
  end
  return wrk.format(nil, nil, nil, '{"resourceSpans":[' .. table.concat(resources, ",") .. ']}')
end
"""

#: A native single event, a new subject and payload each time (the platform gives the id).
EVENT_LUA = """
local sent = 0
function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, '{"type":"%(type)s","source":"/soak","subject":"s/' ..
    math.random(0, 99999) .. '","data":{"n":' .. sent .. ',"pad":"' .. string.rep("x", 64) .. '"}}')
end
"""

#: A new value of one key of the layer the config reads resolve: their cache is invalidated, the
#: /ws/config/ watchers are told.
CONFIG_WRITE_LUA = """
function request()
  return wrk.format(nil, nil, nil, '{"value":' .. math.random(0, 999999) .. '}')
end
"""


@dataclass
class Kind:
    """One kind of HTTP request of the mix, at an offered rate."""

    name: str
    path: str
    rate: float  # requests a second offered
    connections: int
    script: str = ""  # the wrk Lua script (filled in by ``scripts``)
    segments: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None


def kinds(scale: float = 1.0) -> list[Kind]:
    """The mix at ``scale`` times its default rates."""
    return [
        Kind("heartbeat", f"/api/v1/discovery/nodes/{HB_SERVICE}-", 100 * scale, 10),
        Kind("config_read", CONFIG_PATH, 200 * scale, 10),
        Kind("span_ingest", "/v1/traces", 4 * scale, 2),
        Kind("event_publish", "/api/v1/events/", 20 * scale, 4),
        Kind("config_write", CONFIG_WRITE_PATH, 0.2 * scale, 1),
    ]


SPANS_PER_REQUEST = 32


def scripts(mix: list[Kind], token: str, nodes: int) -> None:
    """Fill in each kind's Lua script."""
    auth = {"Authorization": f"Bearer {token}"}
    as_json = {**auth, "Content-Type": "application/json"}
    for kind in mix:
        pause_ms = kind.connections / kind.rate * 1000
        if kind.name == "heartbeat":
            # heartbeats.py's script walks the seeded ids; its path is the kind's prefix
            body = heartbeat_script(token, HB_SERVICE, nodes, 1, pause_ms)
        elif kind.name == "config_read":
            body = wrk_script("GET", auth, "", pause_ms)
        elif kind.name == "span_ingest":
            services = ", ".join(lua_string(s) for s in SPAN_SERVICES)
            body = wrk_script("POST", as_json, "", pause_ms) + SPANS_LUA % {
                "services": services,
                "spans": SPANS_PER_REQUEST,
                "traces": 8,
            }
        elif kind.name == "event_publish":
            body = wrk_script("POST", as_json, "", pause_ms) + EVENT_LUA % {"type": EVENT_TYPE}
        elif kind.name == "config_write":
            body = wrk_script("PUT", as_json, "", pause_ms) + CONFIG_WRITE_LUA
        else:
            raise BenchError(f"unknown kind {kind.name!r}")
        kind.script = body + STATUS_LUA


STATUS_LINE = re.compile(r"^soak-status (\d+) (\d+)$", re.MULTILINE)


def run_segment(
    url: str, kind: Kind, script: Path, seconds: float, timeout_s: float = 10.0
) -> dict[str, Any]:
    """One wrk run of a kind: its figures and the statuses it saw."""
    command = [
        "wrk",
        "-t1",
        f"-c{kind.connections}",
        f"-d{max(round(seconds), 1)}s",
        f"--timeout={round(timeout_s)}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    result = parse_wrk(proc.stdout)
    statuses = {int(code): int(n) for code, n in STATUS_LINE.findall(proc.stdout)}
    errors = {str(code): n for code, n in statuses.items() if not 200 <= code < 300}
    errors.update({f"socket {k}": v for k, v in result.socket_errors.items() if v})
    return {
        "requests": result.requests,
        "seconds": result.seconds,
        "requests_per_s": result.requests_per_s,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": errors,
    }


class Driver(threading.Thread):
    """Runs one kind's wrk segments back to back until ``deadline`` (monotonic)."""

    def __init__(self, kind: Kind, url: str, script: Path, began: float, deadline: float, segment: float):
        super().__init__(name=f"soak-{kind.name}", daemon=True)
        self.kind, self.url, self.script = kind, url, script
        self.began, self.deadline, self.segment = began, deadline, segment

    def run(self) -> None:
        try:
            while (left := self.deadline - time.monotonic()) >= 1:
                start = time.monotonic() - self.began
                figures = run_segment(self.url, self.kind, self.script, min(self.segment, left))
                self.kind.segments.append({"start_s": round(start, 1), **figures})
        except Exception as exc:  # reported with the kind, not lost in a thread
            self.kind.failure = f"{type(exc).__name__}: {exc}"


# --- Websockets -----------------------------------------------------------------------------------


@dataclass
class Socket:
    """The sockets of one dashboard: its path, what it sends once open, and what came back."""

    name: str
    path: str
    subscribe: dict[str, Any] | None
    ready_type: str
    opened: int = 0
    closed_unexpectedly: int = 0
    failed_to_open: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    ping_ms: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the run, rtt)
    last_error: str | None = None


def sockets() -> list[Socket]:
    """The live dashboards' subscriptions (their pages' scripts send the same messages)."""
    return [
        Socket(
            "config",
            "/ws/config/",
            {"type": "subscribe", "namespace": "bench", "env": "production"},
            "config",
        ),
        Socket("discovery", "/ws/discovery/", {"type": "subscribe", "services": ["*"]}, "subscribed"),
        Socket("monitor", "/ws/monitor/", {"type": "subscribe", "services": ["*"]}, "subscribed"),
        Socket("trace", "/ws/trace/", None, "subscribed"),
        Socket("events", f"/ws/events/?types={EVENT_TYPE}", None, "subscribed"),
    ]


class Watchers(threading.Thread):
    """``per_path`` websockets per dashboard, held open until ``stop``; each pings every ``ping_s``
    and reopens after an unexpected close (counted)."""

    def __init__(self, base: str, token: str, per_path: int, began: float, ping_s: float = 10.0) -> None:
        super().__init__(name="soak-websockets", daemon=True)
        self.base = base.replace("http", "ws", 1)
        self.token = token
        self.per_path = per_path
        self.began = began
        self.ping_s = ping_s
        self.sockets = sockets()
        self.ready = threading.Event()
        self.failure: str | None = None
        self._halt = threading.Event()
        self._opened = 0

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self.ready.set()

    async def _main(self) -> None:
        tasks = [asyncio.create_task(self._hold(s, i)) for s in self.sockets for i in range(self.per_path)]
        while not self._halt.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _hold(self, socket: Socket, index: int) -> None:
        separator = "&" if "?" in socket.path else "?"
        url = f"{self.base}{socket.path}{separator}access_token={self.token}"
        await asyncio.sleep(index * 0.05 + random.random() * 0.2)
        first = True
        while not self._halt.is_set():
            try:
                async with websockets.connect(url, open_timeout=30, max_size=None) as ws:
                    if socket.subscribe is not None:
                        await ws.send(json.dumps(socket.subscribe))
                    while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != socket.ready_type:
                        pass
                    socket.opened += 1
                    if first:
                        first = False
                        self._opened += 1
                        if self._opened == len(self.sockets) * self.per_path:
                            self.ready.set()
                    await self._listen(ws, socket)
                    return
            except (OSError, TimeoutError, websockets.WebSocketException, ValueError) as exc:
                if self._halt.is_set():
                    return
                socket.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if first:
                    socket.failed_to_open += 1
                else:
                    socket.closed_unexpectedly += 1
                await asyncio.sleep(1.0)

    async def _listen(self, ws: Any, socket: Socket) -> None:
        next_ping = time.monotonic() + random.uniform(1, self.ping_s)
        sent: float | None = None
        while not self._halt.is_set():
            now = time.monotonic()
            if sent is None and now >= next_ping:
                sent = now
                await ws.send(json.dumps({"type": "ping"}))
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                if sent is not None and time.monotonic() - sent > 30:
                    raise TimeoutError("no pong within 30 s") from None
                continue
            kind = json.loads(raw).get("type", "?")
            socket.messages[kind] = socket.messages.get(kind, 0) + 1
            if kind == "pong" and sent is not None:
                done = time.monotonic()
                socket.ping_ms.append((round(done - self.began, 1), (done - sent) * 1000))
                sent, next_ping = None, done + self.ping_s
