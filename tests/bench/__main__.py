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
import base64
import json
import math
import os
import platform
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.bench import scenarios as scenario_list
from tests.bench.harness import (
    PYTHON,
    ROOT,
    BenchError,
    Load,
    LoadResult,
    Server,
    free_port,
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

RESULTS_DIR = ROOT / "var" / "bench"
RSS_TARGET_MIB = 150.0
#: Threads per WSGI worker (granian --blocking-threads), as ``platform serve --threads`` sets them.
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
#: More granian options for the platform's server (e.g. "--runtime-threads 2"), to compare layouts.
SERVER_ARGS = shlex.split(os.environ.get("BENCH_SERVER_ARGS", ""))
#: The equal offered load for a scenario and its peer, as a share of the slower one's saturation.
EQUAL_LOAD_SHARE = 0.5


def granian_wsgi(app: str, port: int, workers: int, threads: int = 1) -> list[str]:
    """The production HTTP server command (as ``platform serve`` runs it)."""
    return [
        PYTHON,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        app,
    ]


def platform_server(kind: str, port: int, workers: int) -> tuple[str, list[str]]:
    """The platform's server command: the production layout, or an alternative to compare it with."""
    if kind == "granian-wsgi":
        command = granian_wsgi("platformsite.wsgi:application", port, workers, THREADS)
        return "platformsite.wsgi:application", command[:-1] + SERVER_ARGS + command[-1:]
    if kind == "uvicorn-asgi":  # what the embedded mode and the websocket workers run
        app = "platformsite.asgi:application"
        return app, [
            PYTHON,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if kind == "granian-asgi":
        app = "platformsite.asgi:application"
        return app, [
            PYTHON,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            app,
        ]
    raise BenchError(f"unknown server {kind!r}")


def _clean_env() -> dict[str, str]:
    """This process's environment without settings that would redirect a child server."""
    drop = ("DJANGO_SETTINGS_MODULE", "PLATFORM_SERVICE", "PLATFORM_SERVICE_WEB", "PLATFORM_INPROCESS_BEAT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GRANIAN_")}


def _db_engine(url: str) -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith(("postgres", "pgsql", "psql")):
        return "postgresql"
    return scheme or "unknown"


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


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


class Bench:
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

    def start_platform(self, scopes: set[str]) -> None:
        var_dir = self.tmp / "platform"
        metrics_dir = self.tmp / "metrics"
        var_dir.mkdir(parents=True, exist_ok=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = _clean_env()
        fresh_db = "DATABASE_URL" not in env
        env.update(
            DJANGO_SETTINGS_MODULE=self.args.settings,
            PLATFORM_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(45),  # 60 random characters
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            PLATFORM_VAR_DIR=str(var_dir),
            # As `platform serve` does: metrics shared by the workers through files.
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        )
        env.setdefault("DATABASE_URL", f"sqlite:///{var_dir / 'platform.sqlite3'}")
        # The throttle still counts every call (its cost is measured), but never refuses one.
        env.setdefault("PLATFORM_THROTTLE_CLIENT", "1000000000/min")

        print("platform: migrate ...", flush=True)
        self._manage(env, "migrate", "--no-input", "-v", "0")
        account = "bench" if fresh_db else f"bench-{secrets.token_hex(4)}"
        out = self._manage(env, "create_service_account", account, "--scopes", " ".join(sorted(scopes)))
        try:
            creds = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
        except (StopIteration, json.JSONDecodeError) as exc:
            raise BenchError(f"create_service_account printed no JSON:\n{out}") from exc

        port = free_port()
        app, command = platform_server(self.args.server, port, self.args.workers)
        server = Server(
            name="platform",
            command=command,
            env=env,
            log_path=self.tmp / "platform.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers["platform"] = server.start()
        server.wait_ready(lambda: http(server.base_url + "/healthz", timeout=2).status == 200)
        self.values["token"] = self._token(server, creds, scopes)
        self.values["basic"] = base64.b64encode(
            f"{creds['client_id']}:{creds['client_secret']}".encode()
        ).decode()
        for scenario in self.select():
            if scenario.target == "platform" and scenario.setup:
                print(f"platform: setting up {scenario.name} ...", flush=True)
                self._manage(env, "shell", "-c", scenario.setup.replace("{account}", account))
        self.configs["platform"] = {
            "server": self.args.server,
            "workers": self.args.workers,
            "blocking_threads": THREADS,
            "app": app,
            "command": " ".join(server.command[1:]),
            "platform_env": "production",
            "settings": self.args.settings,
            "database": _db_engine(env["DATABASE_URL"]),
            "database_url": _redact(env["DATABASE_URL"]) if not fresh_db else "sqlite (temporary)",
            "cache": "redis" if env.get("REDIS_URL") else "locmem",
            "throttle_client": env["PLATFORM_THROTTLE_CLIENT"],
            "prometheus_multiprocess": True,
        }

    def _manage(self, env: dict[str, str], *args: str) -> str:
        proc = subprocess.run(
            [PYTHON, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            raise BenchError(f"manage.py {args[0]} failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
        return proc.stdout

    @staticmethod
    def _token(server: Server, creds: dict[str, str], scopes: set[str]) -> str:
        basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": " ".join(sorted(scopes))})
        answer = http(
            server.base_url + "/o/token/",
            method="POST",
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            body=body.encode(),
        )
        if answer.status != 200:
            raise BenchError(
                f"POST /o/token/ answered {answer.status}: {answer.body[:500]!r}\n"
                f"{server.name} logged:\n{server.log_errors()}"
            )
        return json.loads(answer.body)["access_token"]

    def start_bare(self) -> None:
        port = free_port()
        app = "tests.bench.bare:application"
        env = _clean_env()
        env["DJANGO_SETTINGS_MODULE"] = "tests.bench.bare"
        server = Server(
            name="bare",
            command=granian_wsgi(app, port, self.args.workers),
            env=env,
            log_path=self.tmp / "bare.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers["bare"] = server.start()
        server.wait_ready(lambda: http(server.base_url + "/bare/16", timeout=2).status == 200)
        self.configs["bare"] = {
            "server": self.args.server,
            "workers": self.args.workers,
            "blocking_threads": THREADS,
            "app": app,
            "command": " ".join(server.command[1:]),
            "django": "DEBUG off, no installed apps, no middleware, no auth; JsonResponse",
        }

    def start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        data_dir = self.tmp / "etcd"
        command = [
            "etcd",
            "--name",
            "bench",
            "--data-dir",
            str(data_dir),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"bench=http://127.0.0.1:{peer}",
            "--initial-cluster-state",
            "new",
            "--logger",
            "zap",
            "--log-level",
            "warn",
        ]
        env = {k: v for k, v in _clean_env().items() if not k.startswith("ETCD")}
        server = Server("etcd", command, env, self.tmp / "etcd.log", f"http://127.0.0.1:{client}")
        self.servers["etcd"] = server.start()
        server.wait_ready(lambda: b"true" in http(server.base_url + "/health", timeout=2).body)
        put = json.dumps({"key": self.values["etcd_key_b64"], "value": self.values["etcd_value_b64"]})
        answer = http(
            server.base_url + "/v3/kv/put",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=put.encode(),
        )
        if answer.status != 200:
            raise BenchError(f"etcd put answered {answer.status}: {answer.body[:300]!r}")
        version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.splitlines()
        self.configs["etcd"] = {
            "server": version[0] if version else "etcd",
            "members": 1,
            "api": "v3 HTTP/JSON gateway",
            "value_bytes": len(scenario_list.ETCD_VALUE),
        }

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
