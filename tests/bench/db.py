"""The db service's benchmark (PostgreSQL): metadata queries over a large external table, and
bulk inserts against a raw COPY of the same rows.

    DATABASE_URL=postgres://... REDIS_URL=redis://... python -m tests.bench.db \
        [--records 1000000] [--queries 200] [--bulk 10000] [--rounds 3] [--no-load]

It starts the production layout (granian WSGI, 2 workers), registers an external PostgreSQL
database (``dbproxy_bench`` on ``DATABASE_URL``'s server, created when missing), then:

1. **query**: ``--records`` records are loaded with COPY into one table (metadata ``tenant`` of
   1,000 values, ``key`` of 100,000, ``env`` of 10; the GIN index built after the load), then,
   one request at a time, ``?meta.tenant=eq.tX&limit=50`` (1,000 matches each, the newest 50),
   ``?meta.key=eq.vX`` (10 matches) and ``?meta.env=eq.eX&meta.tenant=eq.tX``, ``--queries``
   times each with a random value: p50 and p99 in ms;
2. **bulk**: ``--bulk`` records in one ``POST .../bulk/`` (``--rounds`` times, new ids each),
   with the change feed off and on, and the same rows with one psycopg ``COPY`` into a table
   like it (its indexes included), the three in turn each round: records/s of each and their
   ratio.

The read by id is a ``make bench`` scenario (``db_read``: wrk against the bare view).
Results go to ``var/bench/db.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client as httpclient
import json
import os
import random
import secrets
import statistics
import time
from urllib.parse import urlsplit

from tests.bench.harness import ROOT, BenchError, Server, free_port, http, write_json
from tests.bench.servers_start import PlatformServers, _clean_env, platform_server

SCOPES = {"db:read", "db:write", "db:manage"}
EXTERNAL = "dbproxy_bench"


def external_dsn(database_url: str) -> str:
    """``dbproxy_bench`` on the server of ``database_url`` (created when missing)."""
    import psycopg

    server = database_url.rsplit("/", 1)[0]
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EXTERNAL]).fetchone():
            conn.execute(f'CREATE DATABASE "{EXTERNAL}"')
    return f"{server}/{EXTERNAL}"


def setup_read() -> None:
    """The ``db_read`` scenario's data: database ``benchread`` with record ``r1`` in ``items``, on
    the external PostgreSQL when ``DATABASE_URL`` is one (else an SQLite file).  Run by
    ``manage.py shell`` in the platform's environment."""
    from dbproxy_app import services
    from dbproxy_app.catalog import entry
    from dbproxy_app.models import Database
    from dbproxy_app.records import Caller, RecordIn
    from platformsite.api.errors import Conflict

    url = os.environ.get("DATABASE_URL", "")
    # registered afresh: a run's SECRET_KEY is its own, so an earlier run's sealed DSN is unreadable
    Database.objects.filter(name="benchread").delete()
    if url.startswith("postgres"):
        services.database_create(name="benchread", backend="postgresql", dsn=external_dsn(url))
    else:
        services.database_create(name="benchread", backend="sqlite")
    caller = Caller(admin=True, claims={}, load_roles=frozenset)
    record = RecordIn(id="r1", metadata={"env": "prod", "tenant": "t1"}, data={"n": 1, "pad": "x" * 200})
    with contextlib.suppress(Conflict):  # stored by an earlier run
        services.records_write(entry=entry("benchread"), table="items", caller=caller, create=[record])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "samples": len(ordered),
    }


class DbBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = ROOT / "var" / "bench" / f"db-{secrets.token_hex(3)}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.servers: list[Server] = []
        self.results: dict[str, object] = {"records": args.records}

    # --- servers ----------------------------------------------------------------------------------

    def start(self) -> None:
        env = _clean_env()
        if not env.get("DATABASE_URL", "").startswith("postgres"):
            raise BenchError("set DATABASE_URL (PostgreSQL): the db targets are for it")
        env.update(
            DJANGO_SETTINGS_MODULE="platformsite.settings",
            PLATFORM_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(45),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            PLATFORM_VAR_DIR=str(self.tmp),
            PLATFORM_THROTTLE_CLIENT="1000000000/min",
            PLATFORM_MAX_BODY_BYTES=str(64 * 1024 * 1024),
        )
        self.env = env
        self.dsn = external_dsn(env["DATABASE_URL"])
        self.manage("migrate", "--no-input", "-v", "0")
        out = self.manage(
            "create_service_account", f"bench-{secrets.token_hex(4)}", "--scopes", " ".join(SCOPES)
        )
        creds = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
        port = free_port()
        _, command = platform_server("granian-wsgi", port, 2)
        server = Server(
            name="granian-wsgi",
            command=command,
            env=env,
            log_path=self.tmp / "wsgi.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers.append(server.start())
        server.wait_ready(lambda: http(server.base_url + "/healthz", timeout=2).status == 200)
        self.base = server.base_url
        self.token = PlatformServers._token(server, creds, SCOPES)

    def manage(self, *args: str) -> str:
        return PlatformServers._manage(self, self.env, *args)  # type: ignore[arg-type]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def connection(self) -> httpclient.HTTPConnection:
        parts = urlsplit(self.base)
        return httpclient.HTTPConnection(parts.hostname, parts.port, timeout=300)

    def call(self, conn: httpclient.HTTPConnection, method: str, path: str, body: object = None) -> object:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        answer = conn.getresponse()
        payload = answer.read()
        if answer.status >= 300:
            raise BenchError(f"{method} {path} answered {answer.status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def database(self, name: str, *, publish_changes: bool) -> None:
        conn = self.connection()
        with contextlib.suppress(BenchError):  # none yet
            self.call(conn, "DELETE", f"/api/v1/db/databases/{name}/")
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as pg:
            pg.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        self.call(
            conn,
            "POST",
            "/api/v1/db/databases/",
            {"name": name, "backend": "postgresql", "dsn": self.dsn, "publish_changes": publish_changes},
        )

    # --- 1. metadata queries over a large table ---------------------------------------------------------

    def load(self) -> None:
        import psycopg

        print(f"query: loading {self.args.records:,} records ...", flush=True)
        self.database("benchbig", publish_changes=False)
        self.call(self.connection(), "POST", "/api/v1/db/databases/benchbig/tables/", {"name": "items"})
        started = time.monotonic()
        with psycopg.connect(self.dsn) as pg:
            pg.execute('DROP INDEX "benchbig"."items_metadata"')
            base = time.time() - 86_400
            with (
                pg.cursor() as cur,
                cur.copy(
                    'COPY "benchbig"."items" (id, created, updated, version, metadata, data) FROM STDIN'
                ) as copy,
            ):
                for i in range(self.args.records):
                    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(base + i * 0.05)) + "+00"
                    metadata = {"env": f"e{i % 10}", "tenant": f"t{i % 1000}", "key": f"v{i % 100_000}"}
                    copy.write_row((f"r{i:08d}", at, at, 1, json.dumps(metadata), json.dumps({"n": i})))
            pg.commit()
            pg.execute(
                'CREATE INDEX "items_metadata" ON "benchbig"."items" USING gin (metadata jsonb_path_ops)'
            )
            pg.commit()
            pg.execute('ANALYZE "benchbig"."items"')
            pg.commit()
        print(f"query: loaded in {time.monotonic() - started:.0f} s", flush=True)

    def queries(self) -> None:
        conn, rng = self.connection(), random.Random(11)
        shapes = {
            "tenant_newest_50": lambda: f"meta.tenant=eq.t{rng.randrange(1000)}&limit=50",
            "key_10_matches": lambda: f"meta.key=eq.v{rng.randrange(100_000)}",
            "env_and_tenant": lambda: (
                f"meta.env=eq.e{rng.randrange(10)}&meta.tenant=eq.t{rng.randrange(1000)}"
            ),
        }
        results = {}
        for name, make in shapes.items():
            for _ in range(10):  # warm: token, catalog, pool, plan cache
                self.call(conn, "GET", f"/api/v1/db/benchbig/items/records/?{make()}")
            samples = []
            for _ in range(self.args.queries):
                started = time.perf_counter()
                body = self.call(conn, "GET", f"/api/v1/db/benchbig/items/records/?{make()}")
                samples.append(time.perf_counter() - started)
                assert isinstance(body, dict) and "results" in body
            results[name] = percentiles(samples)
            print(f"query {name}: {results[name]}", flush=True)
        self.results["query"] = results

    # --- 2. bulk insert against COPY --------------------------------------------------------------------

    def bulk(self) -> None:
        """Round by round, the same rows (new ids each round) through the API with the change
        feed off, with it on, and with one raw COPY: the three alternate, so a machine whose load
        changes during the run slows all three alike and their ratios stay comparable."""
        import psycopg

        rows = [
            {
                "id": f"b{i:06d}",
                "metadata": {"env": f"e{i % 10}", "tenant": f"t{i % 1000}"},
                "data": {"n": i, "s": "x" * 40},
            }
            for i in range(self.args.bulk)
        ]
        names = {"change_feed_off": "benchbulk", "change_feed_on": "benchbulk_feed"}
        for key, name in names.items():
            self.database(name, publish_changes=key == "change_feed_on")
        conn = self.connection()
        elapsed = dict.fromkeys([*names, "raw_copy"], 0.0)
        with psycopg.connect(self.dsn) as pg:
            for name in names.values():  # the tables, and a first call each (pools, catalog)
                answer = self.call(conn, "POST", f"/api/v1/db/{name}/items/bulk/", {"create": rows[:100]})
            pg.execute('CREATE TABLE "benchbulk"."copy_items" (LIKE "benchbulk"."items" INCLUDING ALL)')
            pg.commit()
            for round_ in range(self.args.rounds):
                batch = [{**row, "id": f"{round_}-{row['id']}"} for row in rows]
                for key, name in names.items():
                    started = time.perf_counter()
                    answer = self.call(conn, "POST", f"/api/v1/db/{name}/items/bulk/", {"create": batch})
                    elapsed[key] += time.perf_counter() - started
                    assert isinstance(answer, dict) and len(answer["created"]) == len(batch)
                elapsed["raw_copy"] += self.raw_copy(pg, batch)
            pg.execute('DROP TABLE "benchbulk"."copy_items"')
            pg.commit()
        total = self.args.bulk * self.args.rounds
        copy_rate = total / elapsed["raw_copy"]
        out: dict[str, object] = {"records_per_call": self.args.bulk, "rounds": self.args.rounds}
        for key in names:
            rate = total / elapsed[key]
            out[key] = {"records_per_s": round(rate), "ratio_to_copy": round(rate / copy_rate, 2)}
            print(f"bulk ({key.replace('_', ' ')}): {rate:,.0f} records/s", flush=True)
        out["raw_copy_records_per_s"] = round(copy_rate)
        out["load_average"] = [round(x, 2) for x in os.getloadavg()]
        self.results["bulk"] = out
        print(f"bulk: {out}", flush=True)

    @staticmethod
    def raw_copy(pg: object, rows: list[dict]) -> float:
        """Seconds to write ``rows`` with one COPY into a table like the records' (indexes
        included), from one connection: what a hand-written loader would do."""
        now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
        started = time.perf_counter()
        with (
            pg.cursor() as cur,  # type: ignore[attr-defined]
            cur.copy(
                'COPY "benchbulk"."copy_items" (id, created, updated, version, metadata, data) FROM STDIN'
            ) as copy,
        ):
            for row in rows:
                copy.write_row((row["id"], now, now, 1, json.dumps(row["metadata"]), json.dumps(row["data"])))
        pg.commit()  # type: ignore[attr-defined]
        return time.perf_counter() - started

    def run(self) -> int:
        self.start()
        try:
            if "query" in self.args.only:
                if not self.args.no_load:
                    self.load()
                self.queries()
            if "bulk" in self.args.only:
                self.bulk()
        finally:
            self.stop()
        write_json(ROOT / "var" / "bench" / "db.json", self.results)
        print(json.dumps(self.results, indent=2))
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="query,bulk", help="query, bulk or both (comma-separated)")
    parser.add_argument("--no-load", action="store_true", help="query the records an earlier run loaded")
    return DbBench(parser.parse_args(argv)).run()


if __name__ == "__main__":
    raise SystemExit(main())
