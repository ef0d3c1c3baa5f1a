"""Benchmark the platform's hot paths against a bare Django view and against peers, in one run.

``make bench`` (``python -m tests.bench``) starts:

- the platform in its production HTTP layout: granian WSGI, 2 workers, ``platformsite.wsgi``,
  ``PLATFORM_ENV=production``, on SQLite in a temporary directory under ``var/bench/`` (or on
  ``DATABASE_URL`` / ``REDIS_URL`` when they are set, e.g. PostgreSQL and Redis);
- the baseline: a bare Django view (no apps, no middleware, no auth) answering a JSON body of
  the same size as the scenario's, on the fastest server configuration the harness knows
  (granian WSGI, 2 workers), so the ratio shows the whole cost of the stack, server included;
- peers where one exists here (etcd for config and discovery reads).

Load comes from ``wrk`` (a separate process, loopback): a warm-up run, then the measured run.
For each scenario it prints requests/s, p50/p99 latency and the ratios, and writes
``var/bench/<scenario>.json``.  It also reports the resident memory of the platform's workers.

A scenario with a peer is then measured once more, with its peer, at the same offered load:
half the saturation rate of the slower of the two.  At saturation a closed-loop load's latency
is its concurrency divided by the throughput (Little's law), so p99 there restates the
throughput ratio; at an equal load both answer the same requests per second and their
latencies compare the two servers themselves.

    python -m tests.bench [--duration 10] [--warmup 3] [--only noop] [--keep]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import scenarios as scenario_list
from tests.bench.harness import (
    ROOT,
    BenchError,
    Load,
    LoadResult,
    Server,
    git_commit,
    have,
    http,
    run_stoppable,
    workers_rss,
    write_json,
    wrk_script,
)
from tests.bench.micro import MICRO, Micro
from tests.bench.scenarios import SCENARIOS, VALUES, Scenario
from tests.bench.servers_start import PlatformServers

RESULTS_DIR = ROOT / "var" / "bench"
RSS_TARGET_MIB = 150.0
#: The equal offered load for a scenario and its peer, as a share of the slower one's saturation.
EQUAL_LOAD_SHARE = 0.5


@dataclass
class Measured:
    """One scenario's figures, with what it is compared to."""

    scenario: Scenario
    url: str
    response_bytes: int
    result: LoadResult
    baseline_key: int
    peer: str | None = None


@dataclass
class EqualLoad:
    """A scenario and its peer measured at the same offered load (requests/s)."""

    offered_per_s: float
    stack: LoadResult
    peer: LoadResult


class Bench(PlatformServers):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.load = Load(
            threads=args.threads, connections=args.connections, warmup_s=args.warmup, duration_s=args.duration
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.tmp = RESULTS_DIR / f"run-{stamp}-{os.getpid()}"
        self.servers: dict[str, Server] = {}
        self.values: dict[str, str] = dict(VALUES)
        self.configs: dict[str, dict[str, object]] = {}
        self.baselines: dict[int, LoadResult] = {}
        self.baseline_urls: dict[int, str] = {}
        self.measured: dict[str, Measured] = {}
        self.equal_load: dict[str, EqualLoad] = {}
        self.memory: dict[str, dict[str, dict[str, float]]] = {}
        self.started = datetime.now(UTC)

    # --- selection --------------------------------------------------------------------------------

    def wanted_names(self) -> list[str] | None:
        if not self.args.only:
            return None
        return [name.strip() for item in self.args.only for name in item.split(",") if name.strip()]

    def select_micro(self) -> list[Micro]:
        wanted = self.wanted_names()
        return [m for m in MICRO if wanted is None or m.name in wanted]

    def run_micro(self) -> None:
        for micro in self.select_micro():
            print(f"micro: {micro.name} ({micro.description}) ...", flush=True)
            figures = micro.run(self.args.duration)
            print("  " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
            path = RESULTS_DIR / f"{micro.name}.json"
            path.write_text(
                json.dumps(
                    {
                        "scenario": micro.name,
                        "description": micro.description,
                        "timestamp": self.started.isoformat(timespec="seconds"),
                        **figures,
                    },
                    indent=2,
                )
            )

    def select(self) -> list[Scenario]:
        wanted = [s.name for s in SCENARIOS]
        if self.args.only:
            wanted = [n for n in self.wanted_names() or [] if n not in {m.name for m in MICRO}]
            if not wanted:
                return []
            unknown = [name for name in wanted if name not in {s.name for s in SCENARIOS}]
            if unknown:
                known = ", ".join(s.name for s in SCENARIOS)
                raise BenchError(f"unknown scenario(s): {', '.join(unknown)} (known: {known})")
            # A scenario's peer is measured with it: the comparison is the point.
            for name in list(wanted):
                peer = scenario_list.by_name(name).peer
                if peer and peer not in wanted and not self.args.no_peers:
                    wanted.append(peer)
        chosen = []
        for scenario in SCENARIOS:
            if scenario.name not in wanted:
                continue
            missing = [binary for binary in scenario.requires if not have(binary)]
            if missing:
                print(f"skipping {scenario.name}: {', '.join(missing)} not installed")
                continue
            chosen.append(scenario)
        if not chosen and not self.select_micro():
            raise BenchError("no scenario to run")
        return chosen

    # --- servers ----------------------------------------------------------------------------------

    def snapshot_memory(self, label: str) -> None:
        for name in ("platform", "bare"):
            if name in self.servers:
                self.memory.setdefault(name, {})[label] = workers_rss(self.servers[name])

    # --- measuring --------------------------------------------------------------------------------

    def script(self, name: str, method: str, headers: dict[str, str], body: str, pause_ms: float = 0) -> Path:
        path = self.tmp / "scripts" / f"{name}.lua"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wrk_script(method, headers, body, pause_ms))
        return path

    def measure_baseline(self, size: int) -> None:
        if size in self.baselines:
            return
        url = f"{self.servers['bare'].base_url}/bare/{size}"
        probe = http(url)
        if probe.status != 200:
            raise BenchError(f"baseline answered {probe.status}")
        if len(probe.body) != size:
            print(f"  note: the bare view cannot answer {size} bytes; it answers {len(probe.body)}")
        print(f"baseline bare view, {len(probe.body)} B body ...", flush=True)
        script = self.script(f"bare-{size}", "GET", {}, "")
        self.baselines[size] = self.load.measure(url, script, self.servers["bare"].proc.pid)
        self.baseline_urls[size] = url

    def measure(self, scenario: Scenario) -> None:
        server = self.servers[scenario.target]
        url = server.base_url + scenario.path
        headers, body = scenario.fill(self.values)
        probe = http(url, method=scenario.method, headers=headers, body=body.encode() if body else None)
        if probe.status != scenario.expect_status:
            raise BenchError(
                f"{scenario.name}: {scenario.method} {scenario.path} answered {probe.status} "
                f"(expected {scenario.expect_status}): {probe.body[:300]!r}\n"
                f"{server.name} logged:\n{server.log_errors()}"
            )
        size = len(probe.body)
        self.measure_baseline(size)
        print(f"{scenario.name}: {scenario.method} {scenario.path}, {size} B body ...", flush=True)
        script = self.script(scenario.name, scenario.method, headers, body)
        result = self.load.measure(url, script, server.proc.pid)
        self.measured[scenario.name] = Measured(scenario, url, size, result, size, scenario.peer)

    def measure_equal_load(self, m: Measured) -> None:
        """``m`` and its peer at the same offered load, for a latency comparison below saturation."""
        peer = self.measured[m.peer]
        offered = EQUAL_LOAD_SHARE * min(m.result.requests_per_s, peer.result.requests_per_s)
        pause_ms = self.load.connections / offered * 1000
        print(f"{m.scenario.name} and {m.peer} at {offered:,.0f} req/s offered ...", flush=True)
        results = []
        for item in (m, peer):
            headers, body = item.scenario.fill(self.values)
            script = self.script(
                f"{item.scenario.name}-at-{offered:.0f}", item.scenario.method, headers, body, pause_ms
            )
            results.append(self.load.measure(item.url, script, self.servers[item.scenario.target].proc.pid))
        self.equal_load[m.scenario.name] = EqualLoad(round(offered, 1), *results)

    def report_equal_load(self) -> None:
        if not self.equal_load:
            return
        print(
            f"\nequal offered load ({EQUAL_LOAD_SHARE:.0%} of the slower one's saturation), "
            f"{self.load.connections} connections, random pauses:"
        )
        for name, eq in self.equal_load.items():
            peer = self.measured[name].peer
            verdict = "ok" if eq.stack.p99_ms <= eq.peer.p99_ms else "OVER"
            print(
                f"  {name}: {eq.stack.requests_per_s:,.0f} req/s, p50 {eq.stack.p50_ms:.2f} ms, "
                f"p99 {eq.stack.p99_ms:.2f} ms | {peer}: {eq.peer.requests_per_s:,.0f} req/s, "
                f"p50 {eq.peer.p50_ms:.2f} ms, p99 {eq.peer.p99_ms:.2f} ms | p99 no worse than the "
                f"peer's: {verdict}"
            )

    # --- reporting --------------------------------------------------------------------------------

    def ratio_to_baseline(self, m: Measured) -> float:
        base = self.baselines[m.baseline_key].requests_per_s
        return m.result.requests_per_s / base if base else math.nan

    def ratio_to_peer(self, m: Measured) -> float | None:
        peer = self.measured.get(m.peer) if m.peer else None
        if peer is None or not peer.result.requests_per_s:
            return None
        return m.result.requests_per_s / peer.result.requests_per_s

    def memory_summary(self, name: str) -> dict[str, object]:
        figures = self.memory.get(name, {})
        summary: dict[str, object] = {"unit": "MiB", "per_worker": figures}
        for label, per_pid in figures.items():
            summary[f"{label}_max"] = max(per_pid.values()) if per_pid else None
        return summary

    def record(self, m: Measured) -> dict[str, object]:
        s = m.scenario
        ratio_peer = self.ratio_to_peer(m)
        peer = self.measured.get(m.peer) if m.peer else None
        base = self.baselines[m.baseline_key]
        data: dict[str, object] = {
            "scenario": s.name,
            "description": s.description,
            "role": s.role,
            "valid": m.result.valid and base.valid,
            "problems": m.result.problems + [f"baseline: {p}" for p in base.problems],
            "noisy": bool(m.result.warnings or base.warnings),
            "warnings": m.result.warnings + [f"baseline: {w}" for w in base.warnings],
            "requests_per_s": round(m.result.requests_per_s, 1),
            "p50_ms": m.result.p50_ms,
            "p99_ms": m.result.p99_ms,
            "server_cpu_us_per_request": m.result.server_cpu_us_per_request,
            "baseline_requests_per_s": round(base.requests_per_s, 1),
            "baseline_server_cpu_us_per_request": base.server_cpu_us_per_request,
            "ratio_to_baseline": round(self.ratio_to_baseline(m), 4),
            "peer": m.peer,
            "ratio_to_peer": round(ratio_peer, 4) if ratio_peer is not None else None,
            "timestamp": self.started.isoformat(timespec="seconds"),
            "commit": git_commit(),
            "request": {
                "method": s.method,
                "url": m.url,
                "header_names": sorted(s.headers),
                "body_bytes": len(s.fill(self.values)[1].encode()),
            },
            "response_bytes": m.response_bytes,
            "result": m.result.as_dict(),
            "baseline": {
                "url": self.baseline_urls[m.baseline_key],
                "server": self.configs["bare"],
                "result": base.as_dict(),
            },
            "peer_result": peer.result.as_dict() if peer else None,
            "server": self.configs[s.target],
            "database": self.configs["platform"]["database"] if s.target == "platform" else None,
            "load": {
                "tool": "wrk",
                "threads": self.load.threads,
                "connections": self.load.connections,
                "warmup_s": self.load.warmup_s,
                "duration_s": self.load.duration_s,
                "same_machine": True,
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
        }
        if s.target == "platform":
            data["memory"] = self.memory_summary("platform")
        if eq := self.equal_load.get(s.name):
            data["equal_load"] = {
                "share_of_slower_saturation": EQUAL_LOAD_SHARE,
                "offered_per_s": eq.offered_per_s,
                "result": eq.stack.as_dict(),
                "peer_result": eq.peer.as_dict(),
                "p99_ratio_to_peer": round(eq.stack.p99_ms / eq.peer.p99_ms, 3) if eq.peer.p99_ms else None,
            }
        return data

    def report(self) -> bool:
        rows = []
        for size, result in sorted(self.baselines.items()):
            rows.append((f"baseline ({size} B)", result, 1.0, None, result.problems))
        for m in self.measured.values():
            rows.append((m.scenario.name, m.result, self.ratio_to_baseline(m), self.ratio_to_peer(m), []))
        header = (
            "scenario",
            "req/s",
            "p50 ms",
            "p99 ms",
            "vs bare",
            "vs peer",
            "srv CPU us/req",
            "CPUs srv/wrk/other",
            "status",
        )
        lines = [header]
        notes = []
        for name, result, ratio, ratio_peer, _ in rows:
            measured = self.measured.get(name)
            peer = f"{ratio_peer:.2f} ({measured.peer})" if ratio_peer is not None and measured else "-"
            cpu = "/".join(f"{result.cpu.get(k, math.nan):.2f}" for k in ("server", "wrk", "other"))
            if not result.valid:
                status = "INVALID: " + "; ".join(result.problems)
            else:
                status = "noisy" if result.warnings else "ok"
            notes += [f"{name}: {warning}" for warning in result.warnings]
            lines.append(
                (
                    name,
                    f"{result.requests_per_s:,.0f}",
                    f"{result.p50_ms:.2f}",
                    f"{result.p99_ms:.2f}",
                    f"{ratio:.3f}",
                    peer,
                    f"{result.server_cpu_us_per_request or math.nan:.0f}",
                    cpu,
                    status,
                )
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        print()
        print(
            f"wrk -t{self.load.threads} -c{self.load.connections} -d{self.load.duration_s:g}s "
            f"(after a {self.load.warmup_s:g} s warm-up), loopback, {os.cpu_count()} CPUs shared"
        )
        for i, line in enumerate(lines):
            cells = [
                cell.ljust(widths[c]) if c in (0, 5, 8) else cell.rjust(widths[c])
                for c, cell in enumerate(line)
            ]
            print("  ".join(cells).rstrip())
            if i == 0:
                print("  ".join("-" * w for w in widths))
        for note in notes:
            print(f"note: {note}")
        self.report_equal_load()
        print()
        for name in ("platform", "bare"):
            if name in self.servers:
                print(f"{name}: {self.configs[name]['command']}")
        if "platform" in self.configs:
            cfg = self.configs["platform"]
            print(f"platform settings: {cfg['settings']}, database: {cfg['database']}, cache: {cfg['cache']}")
        if "etcd" in self.configs:
            print(f"etcd: {self.configs['etcd']['server']}, single member, HTTP/JSON gateway")
        within = True
        if "platform" in self.memory:
            print()
            for label, per_pid in self.memory["platform"].items():
                top = max(per_pid.values()) if per_pid else math.nan
                ok = top < RSS_TARGET_MIB
                within = within and ok
                figures = ", ".join(f"{v:.1f}" for v in per_pid.values())
                verdict = "ok" if ok else "OVER"
                print(
                    f"platform worker RSS {label}: max {top:.1f} MiB ({figures}); "
                    f"target < {RSS_TARGET_MIB:.0f} MB: {verdict}"
                )
            for label, per_pid in self.memory.get("bare", {}).items():
                top = max(per_pid.values()) if per_pid else math.nan
                print(f"bare-view worker RSS {label}: max {top:.1f} MiB")
        if not within:
            print("note: worker memory is over the target")

        written = []
        for m in self.measured.values():
            path = RESULTS_DIR / f"{m.scenario.name}.json"
            write_json(path, self.record(m))
            written.append(str(path.relative_to(ROOT)))
        if "platform" in self.memory:
            path = RESULTS_DIR / "memory.json"
            write_json(
                path,
                {
                    "timestamp": self.started.isoformat(timespec="seconds"),
                    "commit": git_commit(),
                    "target_mib": RSS_TARGET_MIB,
                    "server": self.configs["platform"],
                    "platform": self.memory_summary("platform"),
                    "bare": self.memory_summary("bare"),
                },
            )
            written.append(str(path.relative_to(ROOT)))
        print(f"\nwritten: {', '.join(written)}")
        valid = all(m.result.valid for m in self.measured.values()) and all(
            b.valid for b in self.baselines.values()
        )
        return valid

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> int:
        if not have("wrk"):
            raise BenchError("wrk is not installed (apt-get install wrk)")
        chosen = self.select()
        self.tmp.mkdir(parents=True, exist_ok=True)
        if not chosen:
            self.run_micro()
            return 0
        targets = {s.target for s in chosen}
        began = time.monotonic()
        if "platform" in targets:
            scopes = {scope for s in chosen if s.target == "platform" for scope in s.scopes}
            self.start_platform(scopes or {"monitor:read"})
        self.start_bare()
        if "etcd" in targets:
            self.start_etcd()
        print(f"servers up in {time.monotonic() - began:.1f} s", flush=True)
        self.snapshot_memory("idle")
        for scenario in chosen:
            self.measure(scenario)
        for m in list(self.measured.values()):
            if m.scenario.role == "stack" and m.peer in self.measured and not self.args.no_equal_load:
                self.measure_equal_load(m)
        self.snapshot_memory("after_load")
        valid = self.report()
        self.run_micro()
        print(f"total {time.monotonic() - began:.0f} s")
        if not valid:
            print("some results are INVALID (see above); they should not be compared", file=sys.stderr)
        return 0 if valid else 1

    def cleanup(self) -> None:
        # A second Ctrl-C must not cut the cleanup short and leave servers running.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for server in reversed(list(self.servers.values())):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {server.name}: {exc}", file=sys.stderr)
        if self.tmp.exists() and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            print(f"kept {self.tmp.relative_to(ROOT)} (server logs, database, wrk scripts)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per run (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before each run (3)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only these scenarios (repeat or comma-separate)",
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="with --only, do not add the scenarios' peers"
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--no-equal-load",
        action="store_true",
        help="skip measuring scenarios and their peers again at an equal offered load",
    )
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--settings",
        default="tests.bench.plainview",
        help="settings module of the platform server, to try a change side by side (tests.bench.plainview:"
        " the platform's settings and URLs, plus the plain-view comparison route)",
    )
    parser.add_argument(
        "--server",
        choices=["granian-wsgi", "uvicorn-asgi", "granian-asgi"],
        default="granian-wsgi",
        help="the platform's HTTP server: the production layout (granian-wsgi) or one to compare it with",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's temporary directory")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            extra = f", peer {s.peer}" if s.peer else ""
            print(f"{s.name:12} {s.role:5} {s.method} {s.target}{s.path}{extra}: {s.description}")
        return 0
    bench = Bench(args)
    return run_stoppable("bench", bench.run, bench.cleanup)


if __name__ == "__main__":
    sys.exit(main())
