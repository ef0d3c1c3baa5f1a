"""Monitor soak: a fleet of checks reporting at a fixed rate, and how fast a failure becomes a flip.

    python -m tests.bench.monitor_soak [--nodes 1000] [--checks 10] [--rate 100] [--duration 60]

Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``). It starts the platform as
``python -m tests.bench`` does (granian WSGI, 2 workers, ``PLATFORM_ENV=production``) with a
Celery worker and beat beside it (the monitor's state loop every second), then:

1. seeds ``nodes`` x ``checks`` checks of service ``bench-fleet`` (interval 10 s, TTL 30 s),
   stored steady (passing, counters at their caps), their deadlines spread over 30 to 60 s from
   the seed as a running fleet's are (all at once, a load that starts late on a busy machine
   finds its last nodes expired before their first report);
2. offers ``rate`` node reports a second (each ``checks`` unchanged results) for ``duration`` s
   with wrk, each thread walking its slice of the nodes (with the defaults: 10,000 checks every
   10 s, 1,000 results/s);
3. while that runs, every 5 s: a failing report of a probe check (``failures_before_critical``
   1), timed to its stored flip and to its published ``monitor.check.failed`` event; and a probe
   check that reports once (TTL 2 s) and falls silent, timed from its deadline to its flip and
   event;
4. after the load: the database writes the fleet's checks took (the sum of their versions: an
   unchanged result writes nothing) and any flip of a fleet check (there should be none).

It prints the figures and writes ``var/bench/monitor_soak.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.parse

from tests.bench.__main__ import RESULTS_DIR
from tests.bench.__main__ import parse_args as bench_args
from tests.bench.harness import (
    BenchError,
    Server,
    have,
    http,
    lua_string,
    run_stoppable,
    write_json,
    wrk_script,
)
from tests.bench.heartbeats import Platform, celery_commands
from tests.bench.heartbeats import preflight as heartbeat_preflight

SERVICE = "bench-fleet"
RESULT_PATH = RESULTS_DIR / "monitor_soak.json"

SEED = """
import json, time
from datetime import UTC, datetime, timedelta
from monitor_app.models import Check, Flip, ServiceHealth
Check.objects.filter(service__startswith="bench-").delete()
Flip.objects.filter(service__startswith="bench-").delete()
service, nodes, checks = ARGS
# The deletes above bypass the service functions: drop the cached snapshots of a previous run's
# checks (their ids are gone), or a node's first reports would be recorded under those ids.
from django.core.cache import cache
from monitor_app.services.ingest import snapshot_key
cache.delete_many([snapshot_key(service, f"n{n}", f"c{c}") for n in range(nodes) for c in range(checks)])
now = datetime.now(UTC)
Check.objects.bulk_create([
    Check(service=service, node=f"n{n}", name=f"c{c}", interval=10, ttl=30, status="passing",
          reported="passing", successes=2, last_report=now, changed=now,
          expires_at=now + timedelta(seconds=30 + 30 * n / nodes))
    for n in range(nodes) for c in range(checks)], batch_size=2000)
ServiceHealth.objects.update_or_create(
    name=service, defaults={"status": "healthy", "nodes": nodes, "passing": nodes})
print(json.dumps({"checks": Check.objects.filter(service=service).count()}))
"""

STATE = """
import json
from django.db.models import Sum
from monitor_app.models import Check, Flip
service = ARGS
fleet = Check.objects.filter(service=service)
print(json.dumps({
    "versions": fleet.aggregate(total=Sum("version"))["total"],
    "not_passing": fleet.exclude(status="passing").count(),
    "flips": Flip.objects.filter(service=service).exclude(old="unknown").count(),
}))
"""


def report_script(token: str, nodes: int, checks: int, threads: int, pause_ms: float) -> str:
    """wrk Lua: POST a report of node ``n<i>`` (``checks`` passing results), each thread its slice."""
    results = ",".join(f'{{"name":"c{c}","status":"passing","interval":10,"ttl":30}}' for c in range(checks))
    head = '{"service":' + json.dumps(SERVICE) + ',"node":"n'
    tail = '","checks":[' + results + "]}"
    cycle = f"""
local nodes, threads, head, tail = {nodes}, {threads}, {lua_string(head)}, {lua_string(tail)}
local started = 0
function setup(thread)
  thread:set("slice", started)
  started = started + 1
end
local first, count, turn = 0, 1, 0
function init(args)
  first = math.floor(nodes * slice / threads)
  count = math.max(math.floor(nodes * (slice + 1) / threads) - first, 1)
end
function request()
  local id = first + turn % count
  turn = turn + 1
  return wrk.format(nil, nil, nil, head .. id .. tail)
end
"""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return wrk_script("POST", headers, "", pause_ms) + cycle


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        options = ["--workers", "2", "--connections", str(args.connections), "--threads", "2"]
        options += ["--duration", str(args.duration), *(["--keep"] if args.keep else [])]
        self.bench = Platform(bench_args(options))
        self.probes: list[dict[str, float | str | None]] = []

    @property
    def platform(self) -> Server:
        return self.bench.servers["platform"]

    def manage_json(self, script: str, args: object) -> dict:
        out = self.bench._manage(self.platform.env, "shell", "-c", f"ARGS = {args!r}\n{script}")
        return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))

    def call(self, method: str, path: str, body: object = None) -> dict:
        headers = {
            "Authorization": f"Bearer {self.bench.values['token']}",
            "Content-Type": "application/json",
        }
        answer = http(
            self.platform.base_url + path,
            method=method,
            headers=headers,
            body=json.dumps(body).encode() if body is not None else None,
            timeout=10,
        )
        if answer.status >= 400:
            raise BenchError(f"{method} {path}: {answer.status} {answer.body[:300]!r}")
        return json.loads(answer.body) if answer.body else {}

    def start(self) -> None:
        self.bench.tmp.mkdir(parents=True, exist_ok=True)
        self.bench.start_platform({"monitor:read", "monitor:write", "events:read"})
        commands = celery_commands(self.bench.tmp / "celerybeat-schedule", 2)
        for name, command in commands.items():
            server = Server(name, command, self.platform.env, self.bench.tmp / f"{name}.log", base_url="")
            self.bench.servers[name] = server.start()
        print(f"seeding {self.args.nodes * self.args.checks:,} checks ...", flush=True)
        print("  ", self.manage_json(SEED, (SERVICE, self.args.nodes, self.args.checks)), flush=True)

    def wait_for(self, path: str, found, timeout: float = 15.0) -> dict | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for item in self.call("GET", path).get("results", []):
                if found(item):
                    return item
            time.sleep(0.02)
        return None

    def event_time(self, check_id: str, after: float) -> float | None:
        path = "/api/v1/events/?" + urllib.parse.urlencode(
            {"type": "monitor.check.failed", "subject": check_id}
        )
        event = self.wait_for(path, lambda e: True)
        if event is None:
            return None
        stamp = event.get("received") or event.get("time")
        return iso_seconds(stamp) - after if stamp else None

    def probe(self, round_: int) -> None:
        node = f"probe-{round_}"
        # a failing report
        sent = time.time()
        answer = self.call(
            "POST",
            "/api/v1/monitor/reports/",
            {"service": "bench-probe", "node": node, "checks": [{"name": "fail", "status": "critical"}]},
        )
        check_id = answer["checks"][0]["id"]
        flip = self.wait_for(f"/api/v1/monitor/checks/{check_id}/flips/", lambda f: f["new"] == "critical")
        self.probes.append(
            {
                "kind": "failing report",
                "to_flip_s": iso_seconds(flip["at"]) - sent if flip else None,
                "to_event_s": self.event_time(check_id, sent),
            }
        )
        # a check that falls silent: its deadline is its report plus 2 s
        sent = time.time()
        answer = self.call(
            "POST",
            "/api/v1/monitor/reports/",
            {
                "service": "bench-probe",
                "node": node,
                "checks": [{"name": "silent", "status": "passing", "interval": 1, "ttl": 2}],
            },
        )
        check_id = answer["checks"][0]["id"]
        flip = self.wait_for(
            f"/api/v1/monitor/checks/{check_id}/flips/", lambda f: f["new"] == "critical", timeout=30
        )
        deadline = sent + 2
        self.probes.append(
            {
                "kind": "missed deadline",
                "to_flip_s": iso_seconds(flip["at"]) - deadline if flip else None,
                "to_event_s": self.event_time(check_id, deadline),
            }
        )

    def run(self) -> int:
        args = self.args
        self.start()
        before = self.manage_json(STATE, SERVICE)
        script = self.bench.tmp / "monitor-reports.lua"
        pause_ms = args.connections / args.rate * 1000
        script.write_text(report_script(self.bench.values["token"], args.nodes, args.checks, 2, pause_ms))
        url = self.platform.base_url + "/api/v1/monitor/reports/"
        stop = threading.Event()

        def probing() -> None:
            round_ = 0
            time.sleep(5)
            while not stop.is_set():
                try:
                    self.probe(round_)
                except Exception as exc:  # a probe's failure is a figure too
                    self.probes.append({"kind": "error", "error": repr(exc)[:300]})
                round_ += 1
                stop.wait(5)

        prober = threading.Thread(target=probing, daemon=True)
        offered = args.rate * args.checks
        print(
            f"load: {args.rate:g} reports/s ({offered:,.0f} results/s) for {args.duration:g} s ...",
            flush=True,
        )
        prober.start()
        result = self.bench.load.run(url, script, args.duration, self.platform.proc.pid)
        stop.set()
        prober.join(timeout=60)
        after = self.manage_json(STATE, SERVICE)
        figures = {
            "nodes": args.nodes,
            "checks": args.nodes * args.checks,
            "offered_reports_per_s": args.rate,
            "achieved_reports_per_s": round(result.requests_per_s, 1),
            "results_per_s": round(result.requests_per_s * args.checks, 1),
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "non_2xx": result.non_2xx_3xx,
            "fleet_check_writes": (after["versions"] or 0) - (before["versions"] or 0),
            "results_sent": result.requests * args.checks,
            "fleet_flips": after["flips"],
            "fleet_not_passing": after["not_passing"],
            "probes": self.probes,
            "cpu": result.cpu,
        }
        for kind in ("failing report", "missed deadline"):
            for what in ("to_flip_s", "to_event_s"):
                values = [p[what] for p in self.probes if p.get("kind") == kind and p.get(what) is not None]
                if values:
                    figures[f"{kind} {what} max"] = round(max(values), 3)
                    figures[f"{kind} {what} median"] = round(statistics.median(values), 3)
        write_json(RESULT_PATH, figures)
        print(json.dumps({k: v for k, v in figures.items() if k != "probes"}, indent=2))
        return 0


def iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.monitor_soak", description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=10, help="checks per node (10)")
    parser.add_argument("--rate", type=float, default=100.0, help="node reports a second (100)")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        heartbeat_preflight()
        if not have("wrk"):
            raise BenchError("wrk is not installed")
    except BenchError as exc:
        print(f"monitor_soak: {exc}", file=sys.stderr)
        return 2
    soak = Soak(args)
    return run_stoppable("monitor_soak", soak.run, soak.bench.cleanup)


if __name__ == "__main__":
    sys.exit(main())
