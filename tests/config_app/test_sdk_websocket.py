"""The SDK's hot reload over the real /ws/config/ websocket (a uvicorn subprocess, loopback only)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from platform_client import PlatformSession
from platform_client.config import Config, PlatformSource, wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_platform(tmp_path):
    """A whole platform under uvicorn on its own SQLite file; yields (url, client_id, secret)."""
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
    }
    for name in ("PLATFORM_ENV", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    created = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_service_account",
            "sdk",
            "--scopes",
            "config:read config:write",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    credentials = json.loads(created.stdout.strip().splitlines()[-1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "platformsite.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
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
    yield base, credentials["client_id"], credentials["client_secret"]
    proc.terminate()
    proc.wait(timeout=10)


def test_sdk__hot_reload_over_websocket(asgi_platform, tmp_path):
    # Given a namespace on a platform served over ASGI, and a Config watching it
    base, client_id, secret = asgi_platform
    session = PlatformSession(base, client_id, secret)
    session.call("POST", "/api/v1/config/namespaces/", json={"name": "payments"})
    layer = "/api/v1/config/namespaces/payments/layers/prod/"
    session.call("PUT", layer, json={"data": {"db": {"host": "a"}, "n": 1}})
    source = PlatformSource("payments", "prod", session=session, cache_dir=tmp_path)
    seen = []
    with Config([source], watch=True) as config:
        config.watch("db.host", lambda new, old: seen.append((new, old)))
        assert wait_for(lambda: source.mode == "websocket", timeout=15)

        # When the layer changes twice (db.host only the second time)
        session.call("PUT", layer + "values/n", json={"value": 2})
        assert wait_for(lambda: config.get("n") == 2, timeout=15)
        session.call("PUT", layer + "values/db/host", json={"value": "b"})

        # Then the changes arrive over the websocket and the watch fires once
        assert wait_for(lambda: config.get_str("db.host") == "b", timeout=15)
        assert source.mode == "websocket"
    assert seen == [("b", "a")]
    session.close()
