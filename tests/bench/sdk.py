"""The SDK's targets, each against its reference in the same run (``python -m tests.bench.sdk``):

- KV get on Redis through ``platform_client.kv`` against redis-py's raw ``GET`` (target: at
  least 70 %);
- lock acquire + release on Redis (``platform_client.sync``: one Lua script issuing a fence,
  renewal scheduled and cancelled) against redis-py's ``Lock`` (which has no fence);
- ``import platform_client`` in a fresh interpreter (target: under 150 ms);
- with ``--middleware``: a bare WSGI handler against the same handler behind the SDK's middleware
  (auth + stats + metrics, then + a server span, sampled or not), each under granian (1 worker)
  loaded by ``wrk``, in alternating rounds, medians (``tests.bench.sdk_middleware``; target:
  under 10 % throughput loss).

Redis from ``REDIS_URL`` (its own database), default ``redis://127.0.0.1:6391/0``: every key is
under a prefix unique to the run, deleted at the end; nothing is flushed.
Ops are sequential round trips on one connection; the best of ``--rounds`` rounds is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def best_rate(fn, ops: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(ops):
            fn(i)
        rates.append(ops / (time.perf_counter() - started))
    return max(rates)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--middleware", action="store_true", help="also the middleware's overhead")
    parser.add_argument("--duration", type=float, default=5.0, help="wrk seconds per arm and round")
    parser.add_argument("--middleware-rounds", type=int, default=3, help="rounds over every arm")
    options = parser.parse_args(argv)
    import redis

    from platform_client import kv
    from platform_client.sync import from_url

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6391/0")
    prefix = f"sdkbench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    raw = redis.Redis.from_url(url)
    store = kv.from_url(url, namespace=prefix)
    store.put("key", b"x" * 100)
    raw.set(f"{prefix}:raw", b"x" * 100)
    results = {}
    raw_get = best_rate(lambda i: raw.get(f"{prefix}:raw"), options.ops, options.rounds)
    sdk_get = best_rate(lambda i: store.get("key"), options.ops, options.rounds)
    results["kv_get"] = {
        "redis_py_ops": round(raw_get),
        "sdk_ops": round(sdk_get),
        "ratio": sdk_get / raw_get,
    }

    sync = from_url(url, node="bench", namespace=prefix)

    def sdk_lock(i: int) -> None:
        lock = sync.lock("bench", ttl=10, wait=1)
        lock.acquire()
        lock.release()

    def redis_lock(i: int) -> None:
        lock = raw.lock(f"{prefix}:redis-py-lock", timeout=10, blocking_timeout=1)
        lock.acquire()
        lock.release()

    lock_ops = max(options.ops // 5, 100)
    peer = best_rate(redis_lock, lock_ops, options.rounds)
    ours = best_rate(sdk_lock, lock_ops, options.rounds)
    results["lock_acquire_release"] = {
        "redis_py_lock_ops": round(peer),
        "sdk_ops": round(ours),
        "ratio": ours / peer,
    }
    sync.close()
    leftover = list(raw.scan_iter(match=f"*{prefix}*"))  # hash-tagged sync keys hold it inside
    if leftover:
        raw.delete(*leftover)

    timings = []
    for _ in range(options.rounds):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "import time; t = time.perf_counter(); import platform_client; "
                "print(time.perf_counter() - t)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        timings.append(float(out.stdout))
    results["import_ms"] = round(min(timings) * 1000, 1)
    if options.middleware:
        from tests.bench.sdk_middleware import measure

        results["middleware"] = measure(options.middleware_rounds, options.duration)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
