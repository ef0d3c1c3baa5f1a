"""Real platform processes for tests that need what pytest-django's live server lacks.

``asgi_platform`` serves the whole platform under uvicorn (websockets included) from its own
SQLite file in the embedded mode, with an operator (superuser ``admin``) and a service account.
``free_port`` and ``platform_env`` also serve tests that start ``runservice``.
"""

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
from typing import NamedTuple

import httpx

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = "admin"
OPERATOR_PASSWORD = "pw-test-operator-1"
SERVICES = ("auth", "config", "discovery", "events", "monitor", "router", "trace", "db")
#: The service account may ask for any of these (a token without ``scope`` gets them all).
ALL_SCOPES = " ".join(["admin", *(f"{name}:{access}" for name in SERVICES for access in ("read", "write"))])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def platform_env(var_dir: Path, *, keep: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a platform process on its own SQLite file under ``var_dir``.

    The test run's DATABASE_URL and REDIS_URL are dropped unless named in ``keep``.
    """
    env = {
        **os.environ,
        "PLATFORM_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "platformsite.settings",
        "PLATFORM_TASK_MODE": "eager",
        "PLATFORM_ADMIN_PASSWORD": OPERATOR_PASSWORD,
    }
    for name in ("PLATFORM_ENV", "DATABASE_URL", "REDIS_URL"):
        if name not in keep:
            env.pop(name, None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def wait_healthy(base: str, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{base} did not answer within {seconds} s")


class AsgiPlatform(NamedTuple):
    """Where the platform answers and the service account to call it with (unpacks as a tuple)."""

    url: str
    client_id: str
    client_secret: str


@contextmanager
def asgi_platform(
    var_dir: Path,
    *,
    scopes: str = ALL_SCOPES,
    keep: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
) -> Iterator[AsgiPlatform]:
    """The whole platform under uvicorn; a service account holding ``scopes``; the operator.

    ``keep`` names DATABASE_URL / REDIS_URL to inherit (see platform_env); ``extra_env`` adds settings.
    """
    env = {**platform_env(var_dir, keep=keep), **(extra_env or {})}
    manage(env, "migrate", "-v0")
    manage(env, "ensure_operator")
    created = manage(
        env, "create_service_account", f"test-{os.getpid()}-{time.time_ns()}", "--scopes", scopes
    )
    credentials = json.loads(created[created.index("{") :])
    port = free_port()
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
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield AsgiPlatform(base, credentials["client_id"], credentials["client_secret"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
