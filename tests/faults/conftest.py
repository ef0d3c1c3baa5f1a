"""The fault tests' platform (``make test-faults``): a PostgreSQL and a Redis of their own, two web
nodes in the ``platform serve`` layout (WSGI for HTTP, ASGI for websockets) on their own ports,
two Celery workers and one beat, each a process group the tests can kill and start again.

The tests run only when ``PLATFORM_FAULT_TEST=1``; they need the PostgreSQL server binaries
(``initdb``, ``pg_ctl``: /usr/lib/postgresql/<version>/bin, or PLATFORM_FAULT_PG_BIN) and
``redis-server``.  Nothing else on the machine is touched.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.stack import (
    Postgres,
    Proc,
    Redis,
    celery_command,
    pg_bin,
    platform_command,
    wait_http,
    wait_log,
)
from tests.servers import ALL_SCOPES, ROOT, free_port, manage

# The load's thousands of requests are counted, not logged.
logging.getLogger("httpx").setLevel(logging.WARNING)

WANTED = os.environ.get("PLATFORM_FAULT_TEST") == "1"
#: Where the fault matrix is written (and the logs of a failed run kept).
REPORT_DIR = ROOT / "var" / "faults"


def pytest_collection_modifyitems(config, items):
    reason = ""
    if not WANTED:
        reason = "the fault tests run with `make test-faults` (PLATFORM_FAULT_TEST=1)"
    elif pg_bin() is None or not shutil.which("redis-server"):
        reason = "the fault tests need the PostgreSQL server binaries and redis-server"
    if reason:
        for item in items:
            if "tests/faults/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


#: The fault matrix of this session (set by test_faults' ``matrix`` fixture), for the summary.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if SUMMARY:
        terminalreporter.section("fault matrix")
        for text in SUMMARY:
            terminalreporter.write_line(text)
        terminalreporter.write_line(f"written to {REPORT_DIR / 'matrix.txt'} and matrix.json")


@dataclass
class Node:
    name: str
    http: str
    ws: str
    proc: Proc


@dataclass
class Stack:
    postgres: Postgres
    redis: Redis
    nodes: list[Node]
    workers: list[Proc]
    beat: Proc
    client_id: str
    client_secret: str
    env: dict[str, str]
    var: Path

    def start_worker(self, worker: Proc) -> None:
        worker.start()
        wait_log(worker, b" ready.")

    def restart_node(self, node: Node) -> None:
        node.proc.start()
        wait_http(f"{node.http}/healthz", [node.proc])
        wait_http(f"{node.ws.replace('ws://', 'http://')}/healthz", [node.proc])

    def processes(self) -> list[Proc]:
        return [*(node.proc for node in self.nodes), *self.workers, self.beat]


def _environment(var: Path, database: str, redis: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_VAR_DIR": str(var),
        "DATABASE_URL": database,
        "REDIS_URL": redis,
        "PLATFORM_TASK_MODE": "celery",
        "PLATFORM_THROTTLE_CLIENT": "1000000000/min",
        # webhook deliveries retried quickly, beat's scan for due deliveries every second
        "EVENTS_WEBHOOK_BACKOFF_SECONDS": "0.2",
        "EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
        "EVENTS_WEBHOOK_TIMEOUT": "2",
        "EVENTS_DELIVER_DUE_INTERVAL": "1",
        # The router's evaluation counts the call windows of its last 60 s, not 20: the workers'
        # test reports calls while they are down and checks they are counted once they are back,
        # which took more than 20 s in 2 of 10 runs (the steps' seconds are in its matrix note).
        "ROUTER_LOOKBACK_SECONDS": "60",
        # the webhook receiver listens on 127.0.0.1
        "PLATFORM_ALLOW_PRIVATE_TARGETS": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    for name in ("PLATFORM_ENV", "PLATFORM_WS_URL", "PLATFORM_URL"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # Not under pytest's tmp dir: PostgreSQL runs as another user, who must reach its directory.
    var = Path(tempfile.mkdtemp(prefix="platform-faults-"))
    os.chmod(var, 0o755)  # noqa: S103 - PostgreSQL runs as another user, who must reach its directory
    postgres = Postgres(var / "postgres")
    redis = Redis(var / "redis")
    procs: list[Proc] = []
    try:
        postgres.init()
        postgres.start()
        postgres.create_database("platform")
        redis.start()
        redis.wait()
        env = _environment(var, postgres.url("platform"), redis.url(0))
        manage(env, "migrate", "-v0")
        created = manage(
            env, "create_service_account", f"faults-{secrets.token_hex(3)}", "--scopes", ALL_SCOPES
        )
        credentials = json.loads(created[created.index("{") :])
        nodes = []
        for label in ("a", "b"):
            port, ws_port = free_port(), free_port()
            command = platform_command(
                "serve",
                "--port",
                str(port),
                "--ws-port",
                str(ws_port),
                "--workers",
                "1",
                "--threads",
                "8",
                "--no-worker",
                "--no-beat",
            )
            proc = Proc(
                f"node-{label}",
                command,
                {**env, "PLATFORM_VAR_DIR": str(var / label)},
                var / f"node-{label}.log",
            )
            procs.append(proc.start())
            nodes.append(Node(label, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{ws_port}", proc))
        workers = []
        for label in ("a", "b"):
            command = celery_command("worker", "--concurrency", "2", "--hostname", f"worker-{label}@%h")
            workers.append(Proc(f"worker-{label}", command, env, var / f"worker-{label}.log"))
            procs.append(workers[-1].start())
        beat = Proc(
            "beat",
            celery_command("beat", "--schedule", str(var / "celerybeat-schedule")),
            env,
            var / "beat.log",
        )
        procs.append(beat.start())
        for node in nodes:
            wait_http(f"{node.http}/healthz", procs)
            wait_http(f"{node.ws.replace('ws://', 'http://')}/healthz", procs)
        for worker in workers:
            wait_log(worker, b" ready.")
        yield Stack(
            postgres,
            redis,
            nodes,
            workers,
            beat,
            credentials["client_id"],
            credentials["client_secret"],
            env,
            var,
        )
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        try:
            postgres.stop("fast")
        except Exception as exc:  # already stopped, or never started
            print(f"postgres stop: {exc}")
        # The logs stay beside the matrix (the database's files do not).
        kept = REPORT_DIR / "logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(var, kept, ignore=shutil.ignore_patterns("data", "*.sqlite3*"), dirs_exist_ok=True)
        shutil.rmtree(var, ignore_errors=True)
