"""The trace service's benchmark (PostgreSQL + Redis): OTLP ingest against a raw COPY of the
same rows, reads over a large store, and ingest to the live websocket.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m tests.bench.trace \
        [--spans 10000000] [--seconds 20] [--senders 8] [--queries 100] [--only reads] [--no-load]

It starts the production layout (granian WSGI, 2 workers x 8 threads, and one ASGI worker for
websockets), then:

1. **ingest**: ``--senders`` threads POST OTLP protobuf batches of 512 spans to ``/v1/traces``
   for ``--seconds``; then the same rows, decoded in this process, are written with one psycopg
   ``COPY`` into a table like the span table: spans/s of each and their ratio;
2. **reads**: ``--spans`` synthetic spans are loaded with COPY (spread over the last 24 hours, 50
   services, 1,000 customers as a tag) and the service graph's counters for the last hour; then,
   one request at a time, a search by service and tag, a trace by id and the last hour's graph,
   ``--queries`` times each: p50 and p99 in ms;
3. **live**: a websocket on ``/ws/trace/`` and one-trace batches posted one after the other: the
   time from sending a batch to its summary arriving, p50 and p99.

Results go to ``var/bench/trace.json``.
"""

from __future__ import annotations

import argparse
import http.client as httpclient
import json
import os
import random
import secrets
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.bench.harness import ROOT, BenchError, Server, free_port, http, write_json
from tests.bench.servers_start import PlatformServers, _clean_env, platform_server

BATCH = 512
SERVICES = [f"svc{i:02d}" for i in range(50)]
SCOPES = {"trace:read", "trace:write"}


def otlp_body(spans: int = BATCH, traces: int = 64, service: str | None = None) -> tuple[bytes, list[str]]:
    """An OTLP request of ``spans`` spans over ``traces`` new traces (client/server pairs)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    trace_ids = [os.urandom(16) for _ in range(traces)]
    now = time.time_ns()
    per_service: dict[str, list[int]] = {}
    for i in range(spans):
        name = service or SERVICES[(i // 2) % len(SERVICES)]
        per_service.setdefault(name, []).append(i)
    for name, indexes in per_service.items():
        resource = request.resource_spans.add()
        resource.resource.attributes.add(key="service.name").value.string_value = name
        scope = resource.scope_spans.add()
        scope.scope.name = "bench"
        for i in indexes:
            span = scope.spans.add()
            span.trace_id = trace_ids[i % traces]
            span.span_id = os.urandom(8)
            span.name = f"GET /items/{i % 20}"
            span.kind = 3 if i % 2 else 2
            span.start_time_unix_nano = now + i * 1000
            span.end_time_unix_nano = now + i * 1000 + 1_500_000
            for key, value in (
                ("http.request.method", "GET"),
                ("http.route", f"/items/{i % 20}"),
                ("customer", f"c{i % 1000}"),
            ):
                span.attributes.add(key=key).value.string_value = value
    return request.SerializeToString(), [t.hex() for t in trace_ids]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "samples": len(ordered),
    }


class TraceBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = ROOT / "var" / "bench" / f"trace-{secrets.token_hex(3)}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.servers: list[Server] = []
        self.results: dict[str, object] = {"spans": args.spans}

    # --- servers ------------------------------------------------------------------------------

    def start(self) -> None:
        env = _clean_env()
        if not env.get("DATABASE_URL", "").startswith("postgres") or not env.get("REDIS_URL"):
            raise BenchError("set DATABASE_URL (PostgreSQL) and REDIS_URL: the trace targets are for them")
        env.update(
            DJANGO_SETTINGS_MODULE="platformsite.settings",
            PLATFORM_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(45),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            PLATFORM_VAR_DIR=str(self.tmp),
            PLATFORM_THROTTLE_CLIENT="1000000000/min",
        )
        self.env = env
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("shell", "-c", "from trace_app.services import ensure_partitions; ensure_partitions()")
        out = self.manage(
            "create_service_account", f"bench-{secrets.token_hex(4)}", "--scopes", " ".join(SCOPES)
        )
        creds = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
        for kind, workers in (("granian-wsgi", 2), ("uvicorn-asgi", 1)):
            port = free_port()
            _, command = platform_server(kind, port, workers)
            server = Server(
                name=kind,
                command=command,
                env=env,
                log_path=self.tmp / f"{kind}.log",
                base_url=f"http://127.0.0.1:{port}",
            )
            self.servers.append(server.start())
            server.wait_ready(lambda s=server: http(s.base_url + "/healthz", timeout=2).status == 200)
        self.http, self.ws = self.servers[0].base_url, self.servers[1].base_url
        self.token = PlatformServers._token(self.servers[0], creds, SCOPES)

    def manage(self, *args: str) -> str:
        return PlatformServers._manage(self, self.env, *args)  # type: ignore[arg-type]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def connection(self) -> httpclient.HTTPConnection:
        parts = urlsplit(self.http)
        return httpclient.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(self, conn: httpclient.HTTPConnection, body: bytes) -> int:
        conn.request(
            "POST",
            "/v1/traces",
            body=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/x-protobuf"},
        )
        answer = conn.getresponse()
        answer.read()
        return answer.status

    def get(self, conn: httpclient.HTTPConnection, path: str) -> None:
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise BenchError(f"GET {path} answered {answer.status}: {body[:300]!r}")

    # --- 1. ingest ----------------------------------------------------------------------------

    def ingest(self) -> None:
        print("ingest: building batches ...", flush=True)
        bodies = [otlp_body()[0] for _ in range(self.args.batches)]
        for body in bodies[:4]:  # warm-up: tokens, policy, names seen
            self.post(self.connection(), body)
        queue = iter(bodies[4:])
        lock, sent, failed = threading.Lock(), [0], [0]
        deadline = time.monotonic() + self.args.seconds

        def sender() -> None:
            conn = self.connection()
            while time.monotonic() < deadline:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                status = self.post(conn, body)
                with lock:
                    if status == 200:
                        sent[0] += BATCH
                    else:
                        failed[0] += 1

        threads = [threading.Thread(target=sender) for _ in range(self.args.senders)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        platform_rate = sent[0] / elapsed
        used = bodies[4 : 4 + sent[0] // BATCH]
        copy_rate = self.raw_copy(used)
        self.results["ingest"] = {
            "senders": self.args.senders,
            "batch": BATCH,
            "spans_per_s": round(platform_rate),
            "failed_requests": failed[0],
            "raw_copy_spans_per_s": round(copy_rate),
            "ratio_to_copy": round(platform_rate / copy_rate, 2),
        }
        print(f"ingest: {self.results['ingest']}", flush=True)

    def raw_copy(self, bodies: list[bytes]) -> float:
        """The same rows (decoded here) written with one COPY per batch into a table like the
        span table (its indexes included), from one connection."""
        import psycopg

        from trace_app.decoding import otlp
        from trace_app.store.base import COLUMNS, JSON_COLUMNS

        batches = [otlp.decode_protobuf(body).spans for body in bodies]
        dumps = json.dumps
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            # The span table's columns, identity and indexes (logged, like the real one).
            conn.execute("DROP TABLE IF EXISTS span_copy")
            conn.execute("CREATE TABLE span_copy (LIKE trace_app_span INCLUDING ALL)")
            conn.commit()
            started = time.monotonic()
            count = 0
            for rows in batches:
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY span_copy ({', '.join(COLUMNS)}) FROM STDIN") as copy,
                ):
                    for span in rows:
                        copy.write_row([dumps(span[c]) if c in JSON_COLUMNS else span[c] for c in COLUMNS])
                        count += 1
                conn.commit()
            rate = count / (time.monotonic() - started)
            conn.execute("DROP TABLE span_copy")
            return rate

    # --- 2. reads over a large store ----------------------------------------------------------

    def load(self) -> list[str]:
        """``--spans`` synthetic spans (and an hour of graph counters) straight into the tables."""
        import psycopg

        from trace_app.store.base import COLUMNS

        print(f"reads: loading {self.args.spans:,} spans ...", flush=True)
        now_us = int(time.time() * 1_000_000)
        day_us = 86_400_000_000
        rng = random.Random(7)
        tags = [
            json.dumps({"http.request.method": "GET", "customer": f"c{c}", "http.route": f"/items/{c % 20}"})
            for c in range(1000)
        ]
        sample: list[str] = []
        started = time.monotonic()
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY trace_app_span ({', '.join(COLUMNS)}) FROM STDIN") as copy,
            ):
                trace = ""
                for i in range(self.args.spans):
                    if i % 8 == 0:
                        trace = rng.getrandbits(128).to_bytes(16, "big").hex()
                        if i % 80_000 == 0:
                            sample.append(trace)
                    copy.write_row(
                        (
                            trace,
                            rng.getrandbits(64).to_bytes(8, "big").hex(),
                            "",
                            f"GET /items/{i % 20}",
                            "SERVER",
                            SERVICES[(i // 8) % len(SERVICES)],
                            "",
                            now_us - rng.randrange(day_us - 3_600_000_000) - 60_000_000,
                            1000 + i % 5000,
                            i % 97 == 0,
                            False,
                            False,
                            tags[(i // 8) % 1000],
                            "[]",
                            "[]",
                            "{}",
                            "{}",
                            "{}",
                            "{}",
                        )
                    )
            minute = now_us // 60_000_000
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO trace_app_edge (minute, parent, child, bucket, calls, errors, duration_sum) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (minute - m, SERVICES[p], SERVICES[(p + 1) % 50], b, 100, 1, 100 * 2 ** (b / 4))
                        for m in range(60)
                        for p in range(50)
                        for b in range(40, 50)
                    ],
                )
            conn.commit()
            conn.execute("ANALYZE trace_app_span")
        print(f"reads: loaded in {time.monotonic() - started:.0f} s", flush=True)
        return sample

    def stored_sample(self) -> list[str]:
        """Trace ids already stored (``--no-load``: the spans of an earlier run are read)."""
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            rows = conn.execute(
                "SELECT DISTINCT trace_id FROM trace_app_span TABLESAMPLE SYSTEM (0.01) LIMIT 200"
            )
            return [row[0] for row in rows]

    def reads(self) -> None:
        sample = self.load() if self.args.load else self.stored_sample()
        conn = self.connection()
        rng = random.Random(11)
        queries = {
            "search_service_tag": lambda: (
                f"/api/v1/trace/traces/?service={rng.choice(SERVICES)}&tag=customer=c{rng.randrange(1000)}&limit=20"
            ),
            "trace_by_id": lambda: f"/api/v1/trace/traces/{rng.choice(sample)}/",
            "graph_last_hour": lambda: "/api/v1/trace/graph/",
        }
        measured = {}
        for name, path in queries.items():
            for _ in range(5):
                self.get(conn, path())
            times = []
            for _ in range(self.args.queries):
                started = time.perf_counter()
                self.get(conn, path())
                times.append(time.perf_counter() - started)
            measured[name] = percentiles(times)
            print(f"reads: {name} {measured[name]}", flush=True)
        self.results["reads"] = measured

    # --- 3. ingest to live --------------------------------------------------------------------

    def live(self) -> None:
        from websockets.sync.client import connect

        url = self.ws.replace("http://", "ws://") + f"/ws/trace/?access_token={self.token}"
        conn = self.connection()
        times = []
        with connect(url) as socket:
            json.loads(socket.recv(timeout=10))  # subscribed
            for _ in range(self.args.live):
                body, ids = otlp_body(spans=8, traces=1, service="live")
                started = time.perf_counter()
                if self.post(conn, body) != 200:
                    raise BenchError("live: ingest refused")
                while True:
                    message = json.loads(socket.recv(timeout=10))
                    if any(t["trace_id"] == ids[0] for t in message.get("traces", [])):
                        times.append(time.perf_counter() - started)
                        break
        self.results["live"] = percentiles(times)
        print(f"live: {self.results['live']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--batches", type=int, default=1200, help="batches built for the ingest run")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--live", type=int, default=100)
    parser.add_argument("--only", default="ingest,live,reads", help="comma-separated parts to run")
    parser.add_argument("--no-load", dest="load", action="store_false", help="read the spans already stored")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("trace: skipped (its targets are for PostgreSQL + Redis: set DATABASE_URL and REDIS_URL)")
        return 0
    bench = TraceBench(args)
    try:
        bench.start()
        for part in args.only.split(","):
            getattr(bench, part.strip())()
    finally:
        bench.stop()
    write_json(Path(ROOT / "var" / "bench" / "trace.json"), bench.results)
    print(json.dumps(bench.results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
