"""The whole platform under uvicorn in a subprocess (its own SQLite): real websockets for tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_PASSWORD = "pw-events-operator-1"


@dataclass
class AsgiPlatform:
    url: str
    client_id: str
    client_secret: str
    operator: str = "admin"
    operator_password: str = OPERATOR_PASSWORD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_platform(tmp_path):
    """The whole platform under uvicorn (its own SQLite), a service account and a superuser."""
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
        "PLATFORM_ENV": "embedded",
    }
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "ensure_operator"],
        cwd=ROOT,
        env={**env, "PLATFORM_ADMIN_PASSWORD": OPERATOR_PASSWORD},
        check=True,
        capture_output=True,
    )
    created = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_service_account",
            "sdk",
            "--scopes",
            "events:read events:write",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    credentials = json.loads(created.stdout[created.stdout.index("{") :])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "platformsite.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)
    yield AsgiPlatform(base, credentials["client_id"], credentials["client_secret"])
    proc.terminate()
    proc.wait(timeout=10)
