"""The router's stats ingest target, in process: 1,000 callers x 20 nodes every 10 s, sustained.

Each simulated 10-second cycle stores what 1,000 callers report (a batch of 20 windows each, one
per node: ``router_app.services.stats_ingest``, as the API calls it, from ``--threads`` threads as a
server's request threads would), then runs the evaluation
beat would (``service_evaluate``, merging the lookback's 40,000 windows) and the prune.  The
database and cache are the configured ones (``DATABASE_URL`` / ``REDIS_URL``: run it on
PostgreSQL + Redis); the clock is simulated, the work is real.  The load is sustained when a
cycle's work takes less than its 10 seconds (the API's own cost per call, the HTTP stack's, is
measured by the ``router_stats`` scenario of ``python -m tests.bench``).

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m tests.bench.router_ingest [--cycles 4]

It writes into that database (service ``bench-ingest``; its windows are pruned as it goes).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from platform_client.router_stats import Histogram
    from router_app import services

    call_command("migrate", "--no-input", "-v", "0")
    call_command("discovery_seed", "bench-ingest", "--nodes", str(args.nodes), "--interval", "3600")
    histogram = Histogram()
    for latency, count in ((12.0, 300), (20.0, 150), (45.0, 45), (300.0, 5)):
        histogram.add(latency, count)
    latency = histogram.to_wire()
    now = time.time() // 10 * 10
    cycles = []
    for cycle in range(args.cycles):
        now += 10
        start = int(now - 10)

        def report(caller: int, start: int = start, now: float = now) -> None:
            windows = [
                {"service": "bench-ingest", "node": f"bench-ingest-{node}", "start": start, "requests": 500,
                 "successes": 500 - (node == 0) * 60, "errors": (node == 0) * 60, "latency": latency}
                for node in range(args.nodes)
            ]  # fmt: skip
            services.stats_ingest(caller=f"caller-{caller}", windows=windows, now=now)

        began = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(report, range(args.callers)))
            list(pool.map(lambda _: connection.close(), range(args.threads)))
        ingest = time.perf_counter() - began
        began = time.perf_counter()
        evaluation = services.service_evaluate(service="bench-ingest", now=now)
        evaluate = time.perf_counter() - began
        began = time.perf_counter()
        pruned = services.stats_prune(now=now)
        prune = time.perf_counter() - began
        work = ingest + evaluate + prune
        cycles.append(
            {
                "cycle": cycle + 1,
                "windows": args.callers * args.nodes,
                "ingest_s": round(ingest, 2),
                "windows_per_s": round(args.callers * args.nodes / ingest),
                "evaluate_s": round(evaluate, 2),
                "events": evaluation.events,
                "prune_s": round(prune, 2),
                "pruned": pruned,
                "work_s": round(work, 2),
                "sustained": work < 10.0,
            }
        )
        row = cycles[-1]
        print(
            f"cycle {row['cycle']}: {row['windows']:,} windows in {row['ingest_s']} s "
            f"({row['windows_per_s']:,}/s), evaluation {row['evaluate_s']} s ({row['events']} events), "
            f"prune {row['prune_s']} s: {row['work_s']} s of the 10 s cycle"
        )
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    sustained = all(row["sustained"] for row in cycles)
    print(f"database {engine}, cache {'redis' if settings.REDIS_URL else 'local memory'}: "
          f"{'sustained' if sustained else 'NOT sustained'}")  # fmt: skip
    print(json.dumps({"database": engine, "cycles": cycles, "sustained": sustained}))
    return 0 if sustained else 1


if __name__ == "__main__":
    raise SystemExit(main())
