"""A real ASGI platform (uvicorn subprocess, its own SQLite file) for websocket tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_PASSWORD = "pw-asgi-operator-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def asgi_platform(tmp: Path) -> Iterator[tuple[str, str, str]]:
    """Yield (base URL, client id, client secret) of a fresh platform served by uvicorn.

    The service account holds discovery:read and discovery:write; a superuser ``admin`` has
    the password OPERATOR_PASSWORD.
    """
    port = free_port()
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(tmp),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
        "PLATFORM_ADMIN_PASSWORD": OPERATOR_PASSWORD,
    }
    for name in ("PLATFORM_ENV", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "ensure_operator"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*manage, "create_service_account", "sdk-ws", "--scopes", "discovery:read discovery:write"],
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
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, credentials["client_id"], credentials["client_secret"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
