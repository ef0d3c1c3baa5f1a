"""The SDK server middleware's overhead on a bare WSGI handler
(``python -m tests.bench.sdk --middleware``, or ``python -m tests.bench.sdk_middleware``).

Each arm of ``tests.bench.sdk_wsgi_app`` (bare; the floor any such middleware stands on; auth +
stats; + a sampled server span, spans
dropped or exported over OTLP/HTTP to a local sink; + a span sampled at ratio 0.1; + an unsampled
span; + the opentelemetry-instrumentation-wsgi middleware, for comparison) is served by its own granian
process of the same shape (WSGI, 1 worker, 1 blocking thread, as ``granian_wsgi`` in
``servers_start`` builds it), all started at once.  Then ``--rounds`` rounds load each arm in
turn with ``wrk`` (a warm-up, then ``--duration`` seconds), the arms' order rotating each round,
so a busy spell on the machine hits every arm alike.  Per arm: the median requests/s, and the
median server CPU time per request (all the server's threads, Rust and Python, read from
``/proc``), which a busy machine disturbs much less than requests/s.

The loss of an arm is ``1 - bare / arm`` on the CPU time per request (the throughput lost when
the server is CPU-bound, which it is under wrk), and ``1 - arm / bare`` on the median
requests/s; both are printed, and ``loss_by_cpu_paired``: the median over rounds of each round's
loss against that round's bare handler (the machine's speed drifts between rounds, less within
one, so this pairs measurements taken a few seconds apart).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from tests.bench.harness import Load, Server, free_port, http, wrk_script
from tests.bench.sdk_wsgi_app import ARMS
from tests.bench.servers_start import granian_wsgi


def _key_and_token() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.bench.sdk_wsgi_app import make_token

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, make_token(key)


def _start(name: str, app: str, env: dict[str, str], logs: Path) -> Server:
    port = free_port()
    server = Server(
        name=name,
        command=granian_wsgi(app, port, 1, 1),
        env=env,
        log_path=logs / f"{name}.log",
        base_url=f"http://127.0.0.1:{port}",
    ).start()
    server.wait_ready(lambda: http(f"{server.base_url}/healthz", timeout=2).status < 500)
    return server


def measure(rounds: int = 3, duration: float = 5.0, arms: tuple[str, ...] = ARMS) -> dict:
    pem, token = _key_and_token()
    logs = Path(tempfile.mkdtemp(prefix="sdk-middleware-"))
    servers: dict[str, Server] = {}
    samples: dict[str, list[tuple[float, float | None]]] = {arm: [] for arm in arms}
    warnings: list[str] = []
    try:
        base = {**os.environ, "SDK_BENCH_KEY": pem, "SDK_BENCH_TOKEN": token}
        if "sampled_otlp" in arms:
            sink = _start("sink", "tests.bench.sdk_wsgi_app:sink", base, logs)
            servers["sink"] = sink
            base["SDK_BENCH_OTLP"] = f"{sink.base_url}/v1/traces"
        for arm in arms:
            servers[arm] = _start(
                arm, "tests.bench.sdk_wsgi_app:application", {**base, "SDK_BENCH_ARM": arm}, logs
            )
        script = logs / "request.lua"
        script.write_text(wrk_script("GET", {"Authorization": f"Bearer {token}"}, ""))
        load = Load(threads=2, connections=32, warmup_s=1.0, duration_s=duration)
        for round_ in range(rounds):
            order = arms[round_ % len(arms) :] + arms[: round_ % len(arms)]
            for arm in order:
                server = servers[arm]
                result = load.measure(f"{server.base_url}/", script, server.proc.pid)
                if not result.valid:
                    raise RuntimeError(f"{arm}: {result.problems}")
                warnings += [f"{arm}: {w}" for w in result.warnings]
                samples[arm].append((result.requests_per_s, result.server_cpu_us_per_request))
    finally:
        for server in servers.values():
            server.stop()
    figures: dict[str, dict] = {}
    for arm in arms:
        rps = statistics.median(r for r, _ in samples[arm])
        cpu = statistics.median(c for _, c in samples[arm] if c is not None)
        figures[arm] = {
            "rps_median": round(rps),
            "rps_runs": [round(r) for r, _ in samples[arm]],
            "server_cpu_us_per_request": round(cpu, 1),
        }
    bare = figures.get("bare")
    if bare:
        for arm, figure in figures.items():
            if arm != "bare":
                figure["loss_by_cpu"] = round(
                    1 - bare["server_cpu_us_per_request"] / figure["server_cpu_us_per_request"], 3
                )
                paired = [
                    1 - b / a
                    for (_, a), (_, b) in zip(samples[arm], samples["bare"], strict=True)
                    if a is not None and b is not None
                ]
                if paired:
                    figure["loss_by_cpu_paired"] = round(statistics.median(paired), 3)
                figure["loss_by_rps"] = round(1 - figure["rps_median"] / bare["rps_median"], 3)
    return {
        "server": "granian WSGI, 1 worker, 1 blocking thread; wrk -t2 -c32",
        "rounds": rounds,
        "duration_s": duration,
        "arms": figures,
        "noisy": sorted(set(warnings))[:10],
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="wrk seconds per arm and round")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of: {', '.join(ARMS)}")
    options = parser.parse_args(argv)
    arms = tuple(a for a in options.arms.split(",") if a)
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"unknown arms: {', '.join(sorted(unknown))}")
    results = measure(options.rounds, options.duration, arms)
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
