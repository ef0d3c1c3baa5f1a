"""What a WSGI worker's resident memory holds after each benchmark scenario.

    python -m tests.bench.soak_memory [--only events_batch,...] [--trim-each] [--duration 10]

Runs the platform's scenarios of ``make bench`` in its order, as ``python -m tests.bench`` does
(granian WSGI, 2 workers x 8 threads, wrk with 64 connections; on DATABASE_URL / REDIS_URL when
set), with ``tests.bench.soak_memprobe`` as the settings module: after each scenario it asks
every worker where its memory is (``GET /bench/memory/``: RSS, pymalloc's arenas, glibc's
arenas).  At the end (or after every scenario with ``--trim-each``) each worker also collects
and calls ``malloc_trim(0)``: what the RSS loses then is memory the worker had freed but glibc
had not given back.  Peers (etcd) and the equal-load runs are left out.  The environment is
passed on, so ``MALLOC_ARENA_MAX=2 python -m tests.bench.soak_memory`` tries a setting.
Writes ``var/bench/soak_memory.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from tests.bench.__main__ import RESULTS_DIR, Bench
from tests.bench.__main__ import parse_args as bench_args
from tests.bench.harness import BenchError, Server, git_commit, http, run_stoppable, write_json
from tests.bench.heartbeats import print_table

RESULT_PATH = RESULTS_DIR / "soak_memory.json"


def probe_workers(server: Server, trim: bool = False) -> dict[int, dict[str, Any]]:
    """Every worker's answer to ``/bench/memory/`` (new connections until each pid has answered)."""
    url = server.base_url + "/bench/memory/" + ("?trim=1" if trim else "")
    workers = set(server.worker_pids())
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(200):
        answer = http(url, headers={"Connection": "close"}, timeout=60)
        if answer.status != 200:
            raise BenchError(f"/bench/memory/ answered {answer.status}: {answer.body[:300]!r}")
        figures = json.loads(answer.body)
        seen.setdefault(figures["pid"], figures)
        if workers <= set(seen):
            break
    return dict(sorted(seen.items()))


class MemoryBench(Bench):
    def __init__(self, argv: list[str]) -> None:
        self.trim_each = "--trim-each" in argv
        argv = [a for a in argv if a != "--trim-each"]
        super().__init__(bench_args(["--settings", "tests.bench.soak_memprobe", "--no-peers", *argv]))
        self.probes: list[dict[str, Any]] = []

    def probe(self, label: str, trim: bool = False) -> None:
        seen = probe_workers(self.servers["platform"], trim)
        self.probes += [{"after": label, **figures} for figures in seen.values()]
        rss = ", ".join(str(f["before"]["rss_mib"]) for f in seen.values())
        print(f"  {label}: worker RSS {rss} MiB", flush=True)

    def run(self) -> int:
        chosen = [s for s in self.select() if s.target == "platform"]
        self.tmp.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self.start_platform({scope for s in chosen for scope in s.scopes} or {"monitor:read"})
        self.start_bare()
        self.probe("idle")
        for scenario in chosen:
            self.measure(scenario)
            self.probe(scenario.name, trim=self.trim_each)
        if not self.trim_each:
            self.probe("end, trimmed", trim=True)
        self.report()
        print(f"total {time.monotonic() - began:.0f} s")
        return 0

    def report(self) -> None:
        rows = []
        for p in self.probes:
            before, py, mall = p["before"], p["before"]["python"]["pymalloc"], p["before"]["malloc"]
            trimmed = p.get("after_trim", {}).get("rss_mib", "")
            rows.append(
                (
                    p["after"],
                    str(p["pid"]),
                    str(before["rss_mib"]),
                    f"{py['arenas_mib']} / {py['used_blocks_mib']} / {py['free_blocks_mib']}",
                    f"{mall['in_use_mib']} / {mall['free_held_mib']} / {mall['mmapped_mib']}",
                    str(trimmed),
                )
            )
        print()
        print_table(
            (
                "after",
                "worker",
                "RSS MiB",
                "pymalloc arenas / used / free",
                "malloc in use / free held / mmapped",
                "RSS trimmed",
            ),
            rows,
        )
        env = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "PYTHONMALLOC"))}
        write_json(
            RESULT_PATH,
            {
                "scenario": "soak_memory",
                "timestamp": self.started.isoformat(timespec="seconds"),
                "commit": git_commit(),
                "environment": env,
                "server": self.configs.get("platform"),
                "probes": self.probes,
                "measured": {name: m.result.as_dict() for name, m in self.measured.items()},
            },
        )
        print(f"written: {RESULT_PATH}")


def main(argv: list[str] | None = None) -> int:
    bench = MemoryBench(sys.argv[1:] if argv is None else argv)
    return run_stoppable("soak_memory", bench.run, bench.cleanup)


if __name__ == "__main__":
    sys.exit(main())
