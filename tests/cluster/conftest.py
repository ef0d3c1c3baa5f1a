"""A two-node cluster as operators run it (``make test-cluster``): PostgreSQL and Redis, two web
nodes in the ``platform serve`` layout (WSGI for HTTP, ASGI for websockets, each with a Celery
worker) on their own ports, and one Celery beat.

The tests run only when ``PLATFORM_CLUSTER_TEST=1`` and ``DATABASE_URL`` (PostgreSQL) and
``REDIS_URL`` are set: the cluster gets a database of its own on that server (dropped afterwards)
and the Redis database after the one ``REDIS_URL`` names.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.servers import ALL_SCOPES, ROOT, free_port, manage

WANTED = os.environ.get("PLATFORM_CLUSTER_TEST") == "1"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
REDIS_URL = os.environ.get("REDIS_URL", "")


def pytest_collection_modifyitems(config, items):
    reason = ""
    if not WANTED:
        reason = "the cluster test runs with `make test-cluster` (PLATFORM_CLUSTER_TEST=1)"
    elif not DATABASE_URL.startswith("postgres") or not REDIS_URL:
        reason = "the cluster test needs DATABASE_URL (PostgreSQL) and REDIS_URL"
    if reason:
        for item in items:
            if "tests/cluster/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Node:
    http: str
    ws: str


@dataclass
class Cluster:
    a: Node
    b: Node
    client_id: str
    client_secret: str
    env: dict[str, str]
    var: Path

    def token(self, node: Node, scopes: str = ALL_SCOPES) -> str:
        answer = httpx.post(
            f"{node.http}/o/token/",
            data={"grant_type": "client_credentials", "scope": scopes},
            auth=(self.client_id, self.client_secret),
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]


def _database(url: str, name: str, drop: bool = False) -> str:
    import psycopg

    parts = urlsplit(url)
    # The server's maintenance database: the one DATABASE_URL names need not exist (the test
    # suite only creates test_<name>).
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _redis_next(url: str) -> str:
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


def _wait(url: str, procs: list[subprocess.Popen], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    var = tmp_path_factory.mktemp("cluster")
    name = f"platform_cluster_{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_VAR_DIR": str(var),
        "DATABASE_URL": _database(DATABASE_URL, name),
        "REDIS_URL": _redis_next(REDIS_URL),
        "PLATFORM_TASK_MODE": "celery",
        "EVENTS_WEBHOOK_BACKOFF_SECONDS": "0.5",
        # the webhook receiver of test_cluster listens on 127.0.0.1
        "PLATFORM_ALLOW_PRIVATE_TARGETS": "true",
        # test_deploy puts nginx in front, with the host name of deploy/nginx.conf
        "ALLOWED_HOSTS": "127.0.0.1,localhost,platform.example.com",
    }
    env.pop("PLATFORM_ENV", None)
    subprocess.run(["redis-cli", "-u", env["REDIS_URL"], "flushdb"], check=False, capture_output=True)
    manage(env, "migrate", "-v0")
    created = manage(env, "create_service_account", f"cluster-{secrets.token_hex(3)}", "--scopes", ALL_SCOPES)
    credentials = json.loads(created[created.index("{") :])
    nodes, procs = [], []
    logs = []
    try:
        for label in ("a", "b"):
            port, ws_port = free_port(), free_port()
            log = (var / f"node-{label}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [str(Path(sys.executable).with_name("platform")), "serve", "--port", str(port),
                     "--ws-port", str(ws_port), "--workers", "1", "--threads", "4", "--no-beat"],
                    cwd=ROOT, env={**env, "PLATFORM_VAR_DIR": str(var / label)}, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )  # fmt: skip
            nodes.append(Node(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{ws_port}"))
        beat_log = (var / "beat.log").open("wb")
        logs.append(beat_log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "platformsite", "beat", "--loglevel", "INFO",
                 "--schedule", str(var / "celerybeat-schedule")],
                cwd=ROOT, env=env, stdout=beat_log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        )  # fmt: skip
        for node in nodes:
            _wait(f"{node.http}/healthz", procs)
            _wait(f"{node.ws.replace('ws://', 'http://')}/healthz", procs)
        yield Cluster(nodes[0], nodes[1], credentials["client_id"], credentials["client_secret"], env, var)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in logs:
            log.close()
        _database(DATABASE_URL, name, drop=True)
