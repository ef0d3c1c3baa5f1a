"""The mixed soak: the ``platform serve`` layout on PostgreSQL + Redis under a mixed load for
ten minutes, reporting throughput, latency and errors per kind and memory per process over time.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m tests.bench.soak \
        [--minutes 10] [--warmup-minutes 2] [--scale 1] [--sockets 4] [--keep]

It starts what ``platform serve`` starts (platformsite/cli.py), each in its own process group:
granian WSGI (2 workers x 8 threads) for HTTP, uvicorn (one ASGI worker) for the websockets, a
Celery worker (2 processes) and Celery beat, all with ``PLATFORM_ENV=production``.  It loads the
config namespace the config benchmark reads, seeds 1,000 discovery nodes (interval 10 s) and
then, for ``--minutes``, offers at the same time (rates at ``--scale`` 1; ``soak_mix.py``):

- heartbeats of the 1,000 nodes, 100/s (each node every 10 s while the sweep runs);
- resolved config reads, 200/s, and a write of one key of the layer they read every 5 s;
- OTLP span ingest (JSON, 32 spans of 8 new traces a request), 4 requests/s;
- single event publishes, 20/s;
- ``--sockets`` websockets on each live dashboard (/ws/config/, /ws/discovery/, /ws/monitor/,
  /ws/trace/, /ws/events/) with the dashboards' subscriptions, each pinging every 10 s.

wrk drives each HTTP kind in consecutive segments (``--segment`` s), so p50/p99 are known per
segment.  Every ``--sample`` s the resident memory of every process and the load average are
recorded.  Memory growth is judged per process from the end of the warm-up (median of the
following minute's samples) to the end (median of the last minute's): at most 10 %.

It prints the tables and writes ``var/bench/soak.json``; it exits with 1 when a process grew
beyond 10 %, a request failed, a websocket closed unexpectedly or a server logged an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.bench.__main__ import RESULTS_DIR
from tests.bench.__main__ import parse_args as bench_args
from tests.bench.harness import (
    ROOT,
    BenchError,
    Server,
    child_pids,
    free_port,
    git_commit,
    group_cpu_seconds,
    http,
    rss_mib,
    run_stoppable,
    write_json,
)
from tests.bench.heartbeats import Platform, celery_commands, logged_errors, preflight, print_table
from tests.bench.scenarios import CONFIG_SETUP
from tests.bench.servers_start import platform_server
from tests.bench.soak_memory import probe_workers
from tests.bench.soak_mix import (
    CONFIG_WRITE_PATH,
    HB_SERVICE,
    SPANS_PER_REQUEST,
    Driver,
    Watchers,
    kinds,
    run_segment,
    scripts,
)

RESULT_PATH = RESULTS_DIR / "soak.json"
SCOPES = {
    "config:read",
    "config:write",
    "discovery:read",
    "discovery:write",
    "events:read",
    "events:write",
    "monitor:read",
    "trace:read",
    "trace:write",
}
#: A process may grow this much from the end of the warm-up to the end of the run.
GROWTH_LIMIT = 0.10
NODES = 1000


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        options = [
            "--workers",
            "2",
            "--settings",
            "tests.bench.soak_memprobe" if args.probe else "platformsite.settings",
            *(["--keep"] if args.keep else []),
        ]
        self.bench = Platform(bench_args(options))
        self.mix = kinds(args.scale)
        self.samples: list[dict[str, Any]] = []
        self.began = time.monotonic()
        self.load_began: float | None = None
        self.watchers: Watchers | None = None
        self._sampling = threading.Event()
        #: With ``--probe``: where each web worker's memory is (soak_memprobe.py), at checkpoints.
        self.probes: dict[str, dict[int, Any]] = {}

    @property
    def servers(self) -> dict[str, Server]:
        return self.bench.servers

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.0f} s] {message}", flush=True)

    # --- servers ----------------------------------------------------------------------------------

    def start(self) -> None:
        # tokens outlive the run; the throttle counts but never refuses (as in the benchmark)
        os.environ.setdefault("PLATFORM_ACCESS_TOKEN_SECONDS", str(24 * 3600))
        self.bench.tmp.mkdir(parents=True, exist_ok=True)
        self.say("web: migrate, service account, granian WSGI ...")
        self.bench.start_platform(SCOPES)
        self.servers["web"] = self.servers.pop("platform")
        env = self.servers["web"].env
        port = free_port()
        _, command = platform_server("uvicorn-asgi", port, 1)
        ws = Server("websockets", command, env, self.bench.tmp / "websockets.log", f"http://127.0.0.1:{port}")
        self.servers["websockets"] = ws.start()
        for name, command in celery_commands(self.bench.tmp / "celerybeat-schedule", 2).items():
            self.servers[name] = Server(
                name, command, env, self.bench.tmp / f"{name}.log", base_url=""
            ).start()
        ws.wait_ready(lambda: http(ws.base_url + "/healthz", timeout=2).status == 200)
        worker = self.servers["celery-worker"]
        worker.wait_ready(lambda: b" ready." in worker.log_path.read_bytes(), timeout=120)
        self.say("servers up; loading the config namespace, seeding nodes ...")
        manage = self.bench._manage
        manage(env, "shell", "-c", CONFIG_SETUP)
        manage(
            env,
            "shell",
            "-c",
            "from discovery_app.models import Node; "
            f"Node.objects.filter(service__name={HB_SERVICE!r}).delete(); "
            "from trace_app.services import ensure_partitions; ensure_partitions()",
        )
        manage(env, "discovery_seed", HB_SERVICE, "--nodes", str(NODES), "--interval", "10")

    def processes(self) -> dict[str, int]:
        """Every process of the layout by a stable label: ``web``, ``web worker 1``, ..."""
        found = {}
        for name, server in self.servers.items():
            if server.proc is None or server.proc.poll() is not None:
                continue
            found[name] = server.proc.pid
            for i, child in enumerate(child_pids(server.proc.pid), 1):
                found[f"{name} worker {i}"] = child
        return found

    # --- sampling ---------------------------------------------------------------------------------

    def sample(self) -> None:
        load1 = float(Path("/proc/loadavg").read_text().split()[0])
        rss = {}
        for label, pid in self.processes().items():
            value = rss_mib(pid)
            if value is not None:
                rss[label] = round(value, 1)
        at = time.monotonic() - (self.load_began or time.monotonic())
        self.samples.append({"t_s": round(at, 1), "load1": load1, "rss_mib": rss})

    def probe_memory(self, label: str, trim: bool = False) -> None:
        if self.args.probe:
            self.probes[label] = probe_workers(self.servers["web"], trim)

    def sampler(self) -> None:
        while not self._sampling.wait(self.args.sample):
            self.sample()

    # --- the run ----------------------------------------------------------------------------------

    def probe(self) -> None:
        """One of each request before the load: a refusal here is a setup error, not load."""
        web = self.servers["web"]
        headers = {
            "Authorization": f"Bearer {self.bench.values['token']}",
            "Content-Type": "application/json",
        }
        answer = http(web.base_url + CONFIG_WRITE_PATH, method="PUT", headers=headers, body=b'{"value": 0}')
        if answer.status != 200:
            raise BenchError(f"config write answered {answer.status}: {answer.body[:300]!r}")
        for kind in self.mix:
            if kind.name == "config_write":
                continue
            figures = run_segment(web.base_url + kind.path, kind, self.script_path(kind), 2)
            if figures["errors"] or not figures["requests"]:
                raise BenchError(f"{kind.name}: a 2 s probe answered {figures}\n{web.log_errors()}")

    def script_path(self, kind: Any) -> Path:
        path = self.bench.tmp / "scripts" / f"{kind.name}.lua"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(kind.script)
        return path

    def run(self) -> int:
        args = self.args
        self.start()
        scripts(self.mix, self.bench.values["token"], NODES)
        self.probe()
        web, ws = self.servers["web"], self.servers["websockets"]
        self.sample()
        self.samples[-1]["label"] = "idle"
        self.probe_memory("idle")
        self.load_began = time.monotonic()
        self.watchers = Watchers(ws.base_url, self.bench.values["token"], args.sockets, self.load_began)
        self.watchers.start()
        if not self.watchers.ready.wait(120) or self.watchers.failure:
            raise BenchError(f"the websockets did not open: {self.watchers.failure or 'timeout'}")
        cpu0 = {name: group_cpu_seconds(s.proc.pid) for name, s in self.servers.items()}
        deadline = self.load_began + args.minutes * 60
        drivers = [
            Driver(
                kind,
                web.base_url + kind.path,
                self.script_path(kind),
                self.load_began,
                deadline,
                args.segment,
            )
            for kind in self.mix
        ]
        self.say(
            f"mixed load for {args.minutes:g} min (warm-up {self.warmup_s:.0f} s), "
            f"{args.sockets} websockets per dashboard ..."
        )
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        for driver in drivers:
            driver.start()
        while any(d.is_alive() for d in drivers):
            time.sleep(min(30, max(deadline - time.monotonic(), 1)))
            if "warm" not in self.probes and time.monotonic() - self.load_began >= self.warmup_s:
                self.probe_memory("warm")
            if self.samples:
                last = self.samples[-1]
                top = {k: v for k, v in last["rss_mib"].items() if "worker" in k}
                self.say(f"load {last['load1']:.2f}; RSS {top}")
        elapsed = time.monotonic() - self.load_began
        self.probe_memory("end")
        self.probe_memory("end, trimmed", trim=True)
        self._sampling.set()
        self.watchers.stop()
        self.watchers.join(10)
        self.cpu = {
            name: round((group_cpu_seconds(s.proc.pid) - cpu0[name]) / elapsed, 3)
            for name, s in self.servers.items()
        }
        self.errors = {name: logged_errors(server) for name, server in self.servers.items()}
        return self.report(elapsed)

    @property
    def warmup_s(self) -> float:
        return min(self.args.warmup_minutes * 60, self.args.minutes * 60 * 0.3)

    # --- figures ----------------------------------------------------------------------------------

    def memory(self) -> dict[str, dict[str, Any]]:
        """Per process: RSS at the end of the warm-up and at the end, their growth, the peak."""
        window = max(min(60.0, self.args.minutes * 6), self.args.sample * 2)
        end = self.samples[-1]["t_s"]
        after = [s for s in self.samples if self.warmup_s <= s["t_s"] <= self.warmup_s + window]
        last = [s for s in self.samples if s["t_s"] >= end - window and "label" not in s]
        figures = {}
        for label in self.samples[-1]["rss_mib"]:
            base = [s["rss_mib"][label] for s in after if label in s["rss_mib"]]
            final = [s["rss_mib"][label] for s in last if label in s["rss_mib"]]
            every = [s["rss_mib"][label] for s in self.samples if label in s["rss_mib"]]
            if not base or not final:
                continue
            start, stop = statistics.median(base), statistics.median(final)
            growth = (stop - start) / start
            figures[label] = {
                "idle_mib": self.samples[0]["rss_mib"].get(label),
                "after_warmup_mib": round(start, 1),
                "end_mib": round(stop, 1),
                "peak_mib": max(every),
                "growth": round(growth, 4),
                "ok": growth <= GROWTH_LIMIT,
            }
        return figures

    def kind_figures(self) -> dict[str, dict[str, Any]]:
        figures = {}
        for kind in self.mix:
            segments = kind.segments
            for segment in segments:  # the machine's load average while it ran
                end = segment["start_s"] + segment["seconds"]
                loads = [x["load1"] for x in self.samples if segment["start_s"] <= x["t_s"] <= end]
                segment["load1"] = round(statistics.mean(loads), 2) if loads else None
            measured = [s for s in segments if s["start_s"] >= self.warmup_s] or segments
            requests = sum(s["requests"] for s in segments)
            seconds = sum(s["seconds"] for s in segments) or 1
            errors: dict[str, int] = {}
            for segment in segments:
                for name, n in segment["errors"].items():
                    errors[name] = errors.get(name, 0) + n
            p99s = [s["p99_ms"] for s in measured]
            figures[kind.name] = {
                "offered_per_s": kind.rate,
                "achieved_per_s": round(requests / seconds, 2),
                "requests": requests,
                "p50_ms": round(statistics.median(s["p50_ms"] for s in measured), 2) if measured else None,
                "p99_ms_median": round(statistics.median(p99s), 2) if p99s else None,
                "p99_ms_max": max(p99s) if p99s else None,
                "errors": errors,
                "failure": kind.failure,
                "segments": segments,
            }
            if kind.name == "span_ingest":
                figures[kind.name]["spans_per_s"] = round(requests * SPANS_PER_REQUEST / seconds, 1)
        return figures

    def socket_figures(self) -> dict[str, dict[str, Any]]:
        """Per dashboard; ``pushed`` is what its sockets received of what the load changed, of
        ``expected`` (every socket told of every config write, event and span batch: a few sent
        in the last moment may still be on their way when the sockets close, and the trace
        summaries of the probe's batches, sent just before the sockets open, may come after)."""
        requests = {kind.name: sum(s["requests"] for s in kind.segments) for kind in self.mix}
        pushes = {
            "config": ("config", requests["config_write"]),
            "trace": ("traces", requests["span_ingest"]),
            "events": ("event", requests["event_publish"]),
        }
        figures = {}
        for socket in self.watchers.sockets if self.watchers else []:
            pings = sorted(ms for _, ms in socket.ping_ms)
            kind, changes = pushes.get(socket.name, (None, 0))
            figures[socket.name] = {
                "path": socket.path,
                "sockets": self.args.sockets,
                "pushed": socket.messages.get(kind, 0) if kind else None,
                "expected": changes * self.args.sockets if kind else None,
                "opened": socket.opened,
                "closed_unexpectedly": socket.closed_unexpectedly,
                "failed_to_open": socket.failed_to_open,
                "messages": socket.messages,
                "ping_p50_ms": round(pings[len(pings) // 2], 2) if pings else None,
                "ping_p99_ms": round(pings[min(len(pings) - 1, int(len(pings) * 0.99))], 2)
                if pings
                else None,
                "pings": len(pings),
                "last_error": socket.last_error,
            }
        return figures

    def report(self, elapsed: float) -> int:
        mix, sockets, memory = self.kind_figures(), self.socket_figures(), self.memory()
        loads = [s["load1"] for s in self.samples if "label" not in s]
        print()
        print(
            f"{elapsed / 60:.1f} min of mixed load, warm-up {self.warmup_s:.0f} s; "
            f"load average (1 min) mean {statistics.mean(loads):.2f}, max {max(loads):.2f} "
            f"on {os.cpu_count()} CPUs (shared with other work)"
        )
        rows = [
            (
                name,
                f"{f['offered_per_s']:g}",
                f"{f['achieved_per_s']:g}",
                f"{f['requests']:,}",
                f"{f['p50_ms']}",
                f"{f['p99_ms_median']} / {f['p99_ms_max']}",
                ", ".join(f"{k}: {v}" for k, v in f["errors"].items()) or "0",
            )
            for name, f in mix.items()
        ]
        print_table(
            ("kind", "offered/s", "achieved/s", "requests", "p50 ms", "p99 ms (median / max)", "errors"), rows
        )
        print()
        rows = [
            (
                f["path"],
                str(f["sockets"]),
                str(sum(f["messages"].values())),
                f"{f['pushed']:,} of {f['expected']:,}" if f["expected"] is not None else "-",
                f"{f['ping_p50_ms']} / {f['ping_p99_ms']}",
                str(f["closed_unexpectedly"] + f["failed_to_open"]),
            )
            for f in sockets.values()
        ]
        print_table(
            ("websocket", "open", "messages", "pushed of expected", "ping ms p50 / p99", "dropped"), rows
        )
        print()
        rows = [
            (
                label,
                f"{m['idle_mib']}",
                f"{m['after_warmup_mib']}",
                f"{m['end_mib']}",
                f"{m['peak_mib']}",
                f"{m['growth']:+.1%}",
                "ok" if m["ok"] else "GREW",
            )
            for label, m in memory.items()
        ]
        print_table(("process", "idle MiB", "after warm-up", "end", "peak", "growth", "verdict"), rows)
        failures = self.failures(mix, sockets, memory)
        for name, lines in self.errors.items():
            if lines:
                print(f"{name} logged {len(lines)} error line(s), the last: {lines[-1][:300]}")
        print()
        print("PASSED" if not failures else "FAILED: " + "; ".join(failures))
        write_json(RESULT_PATH, self.record(elapsed, mix, sockets, memory, loads, failures))
        print(f"written: {RESULT_PATH.relative_to(ROOT)}")
        return 0 if not failures else 1

    def failures(self, mix: dict, sockets: dict, memory: dict) -> list[str]:
        found = [f"{label} grew {m['growth']:+.1%}" for label, m in memory.items() if not m["ok"]]
        found += [f"{name}: {f['failure']}" for name, f in mix.items() if f["failure"]]
        found += [f"{name}: {sum(f['errors'].values())} errors" for name, f in mix.items() if f["errors"]]
        found += [
            f"{f['path']}: {f['closed_unexpectedly'] + f['failed_to_open']} dropped"
            for f in sockets.values()
            if f["closed_unexpectedly"] or f["failed_to_open"]
        ]
        found += [f"{name} logged {len(lines)} errors" for name, lines in self.errors.items() if lines]
        if self.watchers and self.watchers.failure:
            found.append(f"websockets: {self.watchers.failure}")
        return found

    def record(self, elapsed, mix, sockets, memory, loads, failures) -> dict[str, Any]:
        return {
            "scenario": "soak",
            "description": "The platform serve layout on PostgreSQL + Redis under a mixed load.",
            "timestamp": self.bench.started.isoformat(timespec="seconds"),
            "commit": git_commit(),
            "passed": not failures,
            "failures": failures,
            "minutes": round(elapsed / 60, 2),
            "warmup_s": self.warmup_s,
            "growth_limit": GROWTH_LIMIT,
            "load_average": {"mean": round(statistics.mean(loads), 2), "max": max(loads)},
            "kinds": mix,
            "websockets": sockets,
            "memory": memory,
            "server_cpus": self.cpu,
            "memory_probes": self.probes,
            "logged_errors": {name: lines[-20:] for name, lines in self.errors.items()},
            "servers": {name: " ".join(s.command[1:]) for name, s in self.servers.items()},
            "samples": self.samples,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of load (10)")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=2.0,
        help="minutes before memory is judged (2; at most 30%% of the run)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every offered rate (1)")
    parser.add_argument("--sockets", type=int, default=4, help="websockets per dashboard (4)")
    parser.add_argument("--segment", type=float, default=30.0, help="seconds per wrk segment (30)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between memory samples (5)")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="serve with tests.bench.soak_memprobe and record where each web worker's memory is "
        "(Python objects, pymalloc, glibc) when idle, after the warm-up and at the end",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (server logs, scripts)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soak = Soak(args)
    return run_stoppable("soak", lambda: (preflight(), soak.run())[1], soak.bench.cleanup)


if __name__ == "__main__":
    sys.exit(main())
