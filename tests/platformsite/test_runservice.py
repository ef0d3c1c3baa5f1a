"""``manage.py runservice NAME`` serves that service's API alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_service(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
    }
    for name in ("PLATFORM_ENV", "DATABASE_URL", "REDIS_URL"):  # its own SQLite file in tmp_path
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runservice", "config", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def test_runservice__serves_only_that_service(config_service):
    assert httpx.get(f"{config_service}/healthz").status_code == 200
    # its own API is there (and wants a token)
    assert httpx.get(f"{config_service}/api/v1/config/").status_code == 401
    # the other services, the dashboards and the admin are not
    assert httpx.get(f"{config_service}/api/v1/events/").status_code == 404
    assert httpx.get(f"{config_service}/ui/").status_code == 404
    assert httpx.get(f"{config_service}/admin/").status_code == 404
    assert httpx.get(f"{config_service}/o/token/").status_code == 404


def test_runservice__unknown_service__is_refused():
    result = subprocess.run(
        [sys.executable, "manage.py", "runservice", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode != 0
    assert "Unknown service 'nope'" in result.stderr


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="self-registration needs Redis (REDIS_URL)")
def test_runservice__registers_itself_in_discovery(tmp_path):
    import sqlite3

    # given a runservice process in the distributed mode (shared cache), on its own database file
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
    }
    for name in ("PLATFORM_ENV", "DATABASE_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runservice", "config", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        rows: list = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.5)
            with sqlite3.connect(tmp_path / "platform.sqlite3") as db:
                rows = db.execute(
                    "SELECT n.id, n.port, s.name FROM discovery_app_node n "
                    "JOIN discovery_app_service s ON s.id = n.service_id WHERE s.name = 'platform.config'"
                ).fetchall()
        # then platform.config is registered with this process's port
        assert rows and rows[0][1] == port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
