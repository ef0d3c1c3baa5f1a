"""Heartbeat soak of the discovery service: N registered nodes renewed at fixed offered rates.

    python -m tests.bench.heartbeats [--nodes 10000] [--interval 10] [--rates 1000,1500,2000]
                                     [--duration 60] [--connections 400] [--keep]

Needs PostgreSQL and Redis (``DATABASE_URL``, ``REDIS_URL``): heartbeats live in the shared
cache and only the distributed mode runs the sweep the way production does.  It starts the
platform as ``python -m tests.bench`` does (migrate, a service account with ``discovery:write``,
granian WSGI, 2 workers x 8 threads, ``PLATFORM_ENV=production``) and beside it what
``platform serve`` starts with Redis: a Celery worker and beat, beat queuing the discovery sweep
every ``DISCOVERY_SWEEP_SECONDS``.  Then:

1. worker memory before seeding, after a short warm-up (heartbeats of unregistered ids, 404s);
2. ``manage.py discovery_seed bench-hb --nodes N --interval I`` (TTL 3 x I), after removing the
   ``bench-hb`` nodes an earlier run left;
3. for each rate, ``--duration`` s of wrk POSTing ``/api/v1/discovery/nodes/bench-hb-<i>/heartbeat/``
   at that offered rate: each wrk thread walks its own slice of the ids, so every node is renewed
   about every N / rate seconds while the sweep runs;
4. after each step, the registry from the database and the cache: every seeded node registered
   and passing with its heartbeat entry, no ``expired`` result and no ``discovery.node.expired``
   event since the last check, the registry not degraded (the safety valve holding overdue nodes);
5. worker memory after the load: its growth over the warm baseline is what the nodes cost.

A rate is held when wrk achieved at least 97 % of it, p99 was under 50 ms, every answer was a
2xx and no node expired.  It prints a table and writes ``var/bench/discovery_heartbeats.json``;
it exits with 1 if a heartbeating node expired (a bug rather than a slow machine).

wrk is a closed loop: each connection pauses a random 0 to 2 x connections / rate seconds
between requests, so latency makes it offer a little less than the rate (about latency / pause
less); use enough connections that the pause dwarfs the latency.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

from tests.bench.__main__ import RESULTS_DIR, Bench
from tests.bench.__main__ import parse_args as bench_args
from tests.bench.harness import (
    PYTHON,
    ROOT,
    BenchError,
    LoadResult,
    Server,
    git_commit,
    group_cpu_seconds,
    have,
    lua_string,
    run_stoppable,
    workers_rss,
    write_json,
    wrk_script,
)
from tests.bench.scenarios import Scenario

SERVICE = "bench-hb"
RESULT_PATH = RESULTS_DIR / "discovery_heartbeats.json"
#: A rate is held when wrk achieved this share of it, under this p99, and nothing expired.
HELD_SHARE = 0.97
P99_TARGET_MS = 50.0
#: What the registered nodes may add to a server process.
RSS_TARGET_MIB = 100.0


# --- Load -----------------------------------------------------------------------------------------


def heartbeat_script(token: str, prefix: str, nodes: int, threads: int, pause_ms: float) -> str:
    """A wrk Lua script POSTing heartbeats of ``<prefix>-0`` ... ``<prefix>-<nodes - 1>``.

    wrk keeps one Lua state per thread, shared by the thread's connections: each thread takes
    its own slice of the ids and its connections take the next id of it in turn, so with
    ``pause_ms`` = connections / rate every node is renewed about every nodes / rate seconds.
    """
    path = f"/api/v1/discovery/nodes/{prefix}-"
    cycle = f"""
local nodes, threads, path = {nodes}, {threads}, {lua_string(path)}
local started = 0
function setup(thread)
  thread:set("slice", started)
  started = started + 1
end
local first, count, turn = 0, 1, 0
function init(args)
  first = math.floor(nodes * slice / threads)
  count = math.max(math.floor(nodes * (slice + 1) / threads) - first, 1)
  math.randomseed(slice + 1)
end
function request()
  local id = first + turn % count
  turn = turn + 1
  return wrk.format(nil, path .. id .. "/heartbeat/")
end
"""
    return wrk_script("POST", {"Authorization": f"Bearer {token}"}, "", pause_ms) + cycle


# --- The sweep ------------------------------------------------------------------------------------

SWEEP_DONE = re.compile(r"discovery_app\.tasks\.sweep\[[^\]]*\] succeeded in ([\d.]+)s: (\{.*\})")


def celery_commands(schedule: Path, concurrency: int) -> dict[str, list[str]]:
    """The Celery worker and beat, as ``platform serve`` starts them with Redis (platformsite/cli.py)."""
    celery = [PYTHON, "-m", "celery", "-A", "platformsite"]
    return {
        "celery-worker": [*celery, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)],
        "celery-beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
    }


def sweeps_logged(log: Path, offset: int = 0) -> list[tuple[float, dict[str, object]]]:
    """The sweeps the Celery worker logged after byte ``offset``: (seconds, report) each."""
    with log.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode(errors="replace")
    found = []
    for match in SWEEP_DONE.finditer(text):
        found.append((float(match.group(1)), ast.literal_eval(match.group(2))))
    return found


def sweep_summary(sweeps: list[tuple[float, dict[str, object]]]) -> dict[str, object]:
    ran = [seconds for seconds, report in sweeps if not report.get("skipped")]
    return {
        "sweeps": len(ran),
        "skipped": len(sweeps) - len(ran),
        "p50_ms": round(statistics.median(ran) * 1000, 1) if ran else None,
        "slowest_ms": round(max(ran) * 1000, 1) if ran else None,
        "expired": sum(int(report.get("expired", 0)) for _, report in sweeps),
        "held": sum(int(report.get("held", 0)) for _, report in sweeps),
        "degraded": any(report.get("degraded") for _, report in sweeps),
    }


# --- The registry ---------------------------------------------------------------------------------

#: Run by ``manage.py shell -c`` after ``ARGS = (service, nodes, since, loaded_until)``; prints one
#: JSON line.  ``oldest_beat_s``: the stalest node's heartbeat age when the load stopped.
CHECK = """
import json, time
from django.db.models import Min
from discovery_app import selectors
from discovery_app.models import Node, Result
from discovery_app.services import to_datetime
service, nodes, since, loaded_until = ARGS
now = time.time()
seeded = Node.objects.filter(service__name=service)
registered = seeded.count()
passing = seeded.filter(status=Node.Status.PASSING).count()
stored = seeded.aggregate(oldest=Min("last_heartbeat"))["oldest"]
beats = selectors.last_heartbeats([f"{service}-{i}" for i in range(nodes)])
try:
    from event_app.models import Event
    events = Event.objects.filter(
        type="discovery.node.expired", subject__startswith=service + "-", received__gte=to_datetime(since)
    ).count()
except Exception as exc:
    events = repr(exc)
state = selectors.degraded_state()
print(json.dumps({
    "registered": registered,
    "passing": passing,
    "heartbeat_entries": len(beats),
    "expired_results": Result.objects.filter(
        service=service, reason="expired", timestamp__gte=to_datetime(since)
    ).count(),
    "expired_events": events,
    "degraded": state is not None,
    "held": state["held"] if state else 0,
    "oldest_beat_s": round(loaded_until - min(beats.values()), 1) if beats else None,
    "stored_beat_lag_s": round(now - stored.timestamp(), 1) if stored else None,
}))
"""


def check_registry(
    bench: Bench, env: dict[str, str], nodes: int, since: float, loaded_until: float
) -> dict[str, object]:
    """The seeded nodes' state, and what expired since ``since`` (a Unix time)."""
    args = (SERVICE, nodes, since, loaded_until)
    out = bench._manage(env, "shell", "-c", f"ARGS = {args!r}\n{CHECK}")
    check = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
    expired = check["expired_events"] if isinstance(check["expired_events"], int) else 0
    check["not_passing"] = nodes - check["passing"]
    check["spurious"] = max(check["not_passing"], check["expired_results"], expired, check["held"])
    check["healthy"] = (
        check["spurious"] == 0
        and check["registered"] == nodes
        and check["heartbeat_entries"] == nodes
        and not check["degraded"]
    )
    return check


# --- Memory and logs ------------------------------------------------------------------------------


def growth_mib(before: dict[str, float], after: dict[str, float]) -> float | None:
    """The largest growth of one worker (by pid; by the largest worker if the pids changed)."""
    same = [after[pid] - before[pid] for pid in after if pid in before]
    if same:
        return round(max(same), 1)
    if before and after:
        return round(max(after.values()) - max(before.values()), 1)
    return None


def logged_errors(server: Server) -> list[str]:
    """Error lines of a server's log: JSON records at level error/critical, or plain tracebacks."""
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if str(record.get("level", "")).lower() in {"error", "critical"}:
                found.append(f"{record.get('logger', '')}: {record.get('message', '')}")
        elif "ERROR" in line or "CRITICAL" in line or line.startswith("Traceback"):
            found.append(line.strip())
    return found


# --- The run --------------------------------------------------------------------------------------


class Platform(Bench):
    """The platform as ``python -m tests.bench`` starts it, without its scenarios."""

    def select(self) -> list[Scenario]:
        return []


class Soak:
    """The platform, the sweep beside it, the seeded nodes and one wrk run per rate."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        options = ["--workers", str(args.workers), "--connections", str(args.connections)]
        options += ["--threads", str(args.threads), "--duration", str(args.duration)]
        options += ["--warmup", str(args.warmup), *(["--keep"] if args.keep else [])]
        self.bench = Platform(bench_args(options))
        #: Expiry is counted from this Unix time on: the seeding, then the start of the last check.
        self.since = 0.0
        self.steps: list[dict[str, object]] = []
        self.memory: dict[str, dict[str, dict[str, float]]] = {"platform": {}, "sweep": {}}
        self.errors: dict[str, list[str]] = {}

    @property
    def platform(self) -> Server:
        return self.bench.servers["platform"]

    @property
    def env(self) -> dict[str, str]:
        return self.platform.env

    def manage(self, *args: str) -> str:
        return self.bench._manage(self.env, *args)

    def start(self) -> None:
        self.bench.tmp.mkdir(parents=True, exist_ok=True)
        self.bench.start_platform({"discovery:write"})
        self.manage(
            "shell",
            "-c",
            f"from discovery_app.models import Node; Node.objects.filter(service__name={SERVICE!r}).delete()",
        )
        commands = celery_commands(self.bench.tmp / "celerybeat-schedule", self.args.workers)
        for name, command in commands.items():
            server = Server(name, command, self.env, self.bench.tmp / f"{name}.log", base_url="")
            self.bench.servers[name] = server.start()
        worker = self.bench.servers["celery-worker"]
        print("sweep: celery worker and beat, waiting for the first sweep ...", flush=True)
        worker.wait_ready(lambda: bool(sweeps_logged(worker.log_path)), timeout=90)

    def snapshot_memory(self, label: str) -> None:
        self.memory["platform"][label] = workers_rss(self.platform)
        self.memory["sweep"][label] = workers_rss(self.bench.servers["celery-worker"])

    def script(self, name: str, prefix: str, nodes: int, rate: float) -> Path:
        path = self.bench.tmp / "scripts" / f"{name}.lua"
        path.parent.mkdir(parents=True, exist_ok=True)
        pause_ms = self.args.connections / rate * 1000
        token = self.bench.values["token"]
        path.write_text(heartbeat_script(token, prefix, nodes, self.args.threads, pause_ms))
        return path

    def warm_up(self) -> None:
        """Heartbeats of ids that are not registered (404s): the code paths, not the nodes."""
        rate = min(self.args.rates)
        print(f"warm-up: {self.args.warmup:g} s of heartbeats of unregistered nodes ...", flush=True)
        script = self.script("warm-up", f"{SERVICE}-absent", self.args.nodes, rate)
        self.bench.load.run(self.url, script, self.args.warmup)

    @property
    def url(self) -> str:
        return self.platform.base_url + "/api/v1/discovery/nodes/"

    def seed(self) -> float:
        args = self.args
        print(f"seeding {args.nodes:,} nodes of {SERVICE} (interval {args.interval} s) ...", flush=True)
        seeded = time.time()
        out = self.manage(
            "discovery_seed",
            SERVICE,
            "--nodes",
            str(args.nodes),
            "--interval",
            str(args.interval),
            "--ttl",
            str(args.ttl),
        )
        print(f"  {out.strip()}", flush=True)
        return seeded

    def step(self, rate: float) -> dict[str, object]:
        """One rate for ``--duration`` seconds, then the registry check."""
        args = self.args
        print(
            f"{rate:,.0f} heartbeats/s offered for {args.duration:g} s "
            f"(each node every {args.nodes / rate:.1f} s) ...",
            flush=True,
        )
        script = self.script(f"at-{rate:.0f}", SERVICE, args.nodes, rate)
        sweeper = self.bench.servers["celery-worker"]
        offset = sweeper.log_path.stat().st_size
        cpu0, t0 = group_cpu_seconds(sweeper.proc.pid), time.monotonic()
        result = self.bench.load.run(self.url, script, args.duration, self.platform.proc.pid)
        sweep_cpus = (group_cpu_seconds(sweeper.proc.pid) - cpu0) / (time.monotonic() - t0)
        sweep = {**sweep_summary(sweeps_logged(sweeper.log_path, offset)), "cpus": round(sweep_cpus, 2)}
        checked = time.time()
        check = check_registry(self.bench, self.env, args.nodes, self.since, checked)
        self.since = checked
        held = held_verdict(rate, result, check, sweep)
        return {
            "offered_per_s": rate,
            "held": held,
            "result": result.as_dict(),
            "sweep": sweep,
            "registry": check,
        }

    def run(self) -> int:
        args = self.args
        began = time.monotonic()
        self.start()
        print(f"servers up in {time.monotonic() - began:.1f} s", flush=True)
        self.snapshot_memory("idle")
        self.warm_up()
        self.snapshot_memory("before_seeding")
        self.since = self.seed()
        for rate in args.rates:
            step = self.step(rate)
            self.steps.append(step)
            print("  " + step_line(step), flush=True)
        self.snapshot_memory("after_load")
        self.errors = {name: logged_errors(server) for name, server in self.bench.servers.items()}
        self.report()
        print(f"total {time.monotonic() - began:.0f} s")
        if any(step["registry"]["spurious"] for step in self.steps):
            print("seeded nodes expired although they were heartbeating (see above)", file=sys.stderr)
            return 1
        return 0

    # --- reporting --------------------------------------------------------------------------------

    def highest_held(self) -> float | None:
        held = [step["offered_per_s"] for step in self.steps if step["held"]]
        return max(held) if held else None

    def memory_figures(self) -> dict[str, object]:
        figures: dict[str, object] = {"unit": "MiB", "target_mib": RSS_TARGET_MIB}
        for name, snapshots in self.memory.items():
            figures[name] = {
                "per_worker": snapshots,
                "growth_mib": growth_mib(
                    snapshots.get("before_seeding", {}), snapshots.get("after_load", {})
                ),
            }
        return figures

    def report(self) -> None:
        args = self.args
        rows = [table_row(step) for step in self.steps]
        print()
        print(
            f"{args.nodes:,} nodes, interval {args.interval} s, TTL {args.ttl} s; wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration:g}s per rate, loopback, {os.cpu_count()} CPUs shared"
        )
        print_table(TABLE_HEADER, rows)
        for step in self.steps:
            for warning in step["result"]["warnings"]:
                print(f"note: {step['offered_per_s']:,.0f}/s: {warning}")
        memory = self.memory_figures()
        print()
        for name in ("platform", "sweep"):
            snapshots = self.memory[name]
            top = {label: max(per_pid.values(), default=0.0) for label, per_pid in snapshots.items()}
            growth = memory[name]["growth_mib"]
            verdict = "ok" if growth is not None and growth < RSS_TARGET_MIB else "OVER"
            print(
                f"{name} worker RSS (max, MiB): idle {top.get('idle', 0):.1f}, before seeding "
                f"{top.get('before_seeding', 0):.1f}, after seeding + load {top.get('after_load', 0):.1f}; "
                f"growth of a worker {growth} MiB, target < {RSS_TARGET_MIB:.0f} MB: {verdict}"
            )
        for name, lines in self.errors.items():
            if lines:
                print(f"{name} logged {len(lines)} error line(s), the last: {lines[-1][:300]}")
        best = self.highest_held()
        print()
        print(
            f"highest rate held: {f'{best:,.0f} heartbeats/s' if best else 'none'} "
            f"(achieved >= {HELD_SHARE:.0%} of offered, p99 < {P99_TARGET_MS:.0f} ms, all 2xx, no expiry)"
        )
        write_json(RESULT_PATH, self.record(memory))
        print(f"written: {RESULT_PATH.relative_to(ROOT)}")

    def record(self, memory: dict[str, object]) -> dict[str, object]:
        args = self.args
        return {
            "scenario": "discovery_heartbeats",
            "description": "Heartbeats of N registered nodes at fixed offered rates, the sweep running.",
            "timestamp": self.bench.started.isoformat(timespec="seconds"),
            "commit": git_commit(),
            "nodes": args.nodes,
            "interval_s": args.interval,
            "ttl_s": args.ttl,
            "criteria": {"achieved_share": HELD_SHARE, "p99_ms": P99_TARGET_MS, "non_2xx": 0, "expired": 0},
            "highest_rate_held": self.highest_held(),
            "steps": self.steps,
            "memory": memory,
            "logged_errors": {name: lines[-20:] for name, lines in self.errors.items()},
            "server": self.bench.configs["platform"],
            "sweep": "celery worker + beat (platform serve), DISCOVERY_SWEEP_SECONDS",
            "load": {
                "tool": "wrk",
                "threads": args.threads,
                "connections": args.connections,
                "duration_s": args.duration,
                "pause": "random 0 to 2 x connections / rate per connection",
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
        }


def held_verdict(rate: float, result: LoadResult, check: dict[str, object], sweep: dict[str, object]) -> bool:
    """Whether a step held its rate: throughput, p99, every answer 2xx, no expiry, the sweep running."""
    return (
        result.valid
        and not result.socket_errors.get("timeout")
        and result.requests_per_s >= HELD_SHARE * rate
        and result.p99_ms < P99_TARGET_MS
        and bool(check["healthy"])
        and int(sweep["sweeps"]) > 0
    )


TABLE_HEADER = ("offered/s", "achieved/s", "p50 ms", "p99 ms", "non-2xx", "srv CPUs (us/req)", "sweeps")
TABLE_HEADER += ("slowest ms", "not passing", "expired", "oldest beat s", "held")


def table_row(step: dict[str, object]) -> tuple[str, ...]:
    """A step's figures; ``expired`` is results/events, ``oldest beat`` the stalest node's age."""
    result, sweep, check = step["result"], step["sweep"], step["registry"]
    rate = step["offered_per_s"]
    skipped = f" +{sweep['skipped']} skipped" if sweep["skipped"] else ""
    return (
        f"{rate:,.0f}",
        f"{result['requests_per_s']:,.0f} ({result['requests_per_s'] / rate:.1%})",
        f"{result['p50_ms']:.2f}",
        f"{result['p99_ms']:.2f}",
        str(result["non_2xx_3xx"]),
        f"{result['cpu'].get('server', 0):.2f} ({result['server_cpu_us_per_request'] or 0:.0f})",
        f"{sweep['sweeps']}{skipped} ({sweep['cpus']:.2f} CPUs)",
        str(sweep["slowest_ms"]),
        str(check["not_passing"]),
        f"{check['expired_results']}/{check['expired_events']}",
        str(check["oldest_beat_s"]),
        "yes" if step["held"] else "NO",
    )


def step_line(step: dict[str, object]) -> str:
    result, check = step["result"], step["registry"]
    return (
        f"{result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, non-2xx {result['non_2xx_3xx']}, "
        f"{check['passing']:,} passing, spurious expiry {check['spurious']}"
    )


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for i, line in enumerate(lines):
        print("  ".join(cell.rjust(widths[c]) for c, cell in enumerate(line)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


# --- Command line ---------------------------------------------------------------------------------


def preflight() -> None:
    """Refuse to run without PostgreSQL, Redis and wrk."""
    database = os.environ.get("DATABASE_URL", "")
    if not urllib.parse.urlsplit(database).scheme.startswith(("postgres", "pgsql", "psql")):
        raise BenchError(
            "DATABASE_URL must name a PostgreSQL database (e.g. postgres://user:pass@127.0.0.1/bench): "
            "the heartbeat soak measures the distributed mode"
        )
    if not os.environ.get("REDIS_URL"):
        raise BenchError(
            "REDIS_URL must be set (e.g. redis://127.0.0.1:6379/7): heartbeats live in the shared cache"
        )
    if not have("wrk"):
        raise BenchError("wrk is not installed (apt-get install wrk)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.heartbeats",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nodes", type=int, default=10_000, help="registered nodes (10000)")
    parser.add_argument("--interval", type=int, default=10, help="their heartbeat interval, s (10)")
    parser.add_argument("--ttl", type=int, help="their TTL, s (3 x interval)")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(rate) for rate in text.split(",") if rate.strip()],
        default=[1000.0, 1500.0, 2000.0],
        help="offered heartbeats/s, one step each (1000,1500,2000)",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate (60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before seeding (3)")
    parser.add_argument("--connections", type=int, default=400, help="wrk connections (400)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="WSGI workers and Celery processes (2)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs, wrk scripts)")
    args = parser.parse_args(argv)
    args.ttl = args.ttl or 3 * args.interval
    if args.nodes < args.threads or not args.rates:
        parser.error("--nodes must be at least --threads, and --rates must name a rate")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        preflight()
    except BenchError as exc:
        print(f"heartbeats: {exc}", file=sys.stderr)
        return 2
    soak = Soak(args)
    return run_stoppable("heartbeats", soak.run, soak.bench.cleanup)


if __name__ == "__main__":
    sys.exit(main())
