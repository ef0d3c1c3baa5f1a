"""``platform run`` (what ``make run`` calls): what its console shows, in a real process."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from tests.servers import ROOT, free_port, platform_env, wait_healthy


class Console:
    """The merged stdout and stderr of a process, line by line, read on a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, text: str, seconds: float = 60.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {seconds} s; saw:\n" + "\n".join(self.lines))

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=0.1))


def platform_run(env: dict[str, str], port: int, **output: Any) -> subprocess.Popen:
    """``platform run`` on ``port``, in a process of its own."""
    command = [sys.executable, "-m", "platformsite.cli", "run", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, **output)


def test_platform_run__password_last_then_an_access_line_per_request_and_no_scheduler_chatter(tmp_path):
    env = platform_env(tmp_path)
    for name in ("PLATFORM_ADMIN_PASSWORD", "PLATFORM_TASK_MODE", "PLATFORM_ACCESS_LOG", "LOG_LEVEL"):
        env.pop(name, None)  # as on a first ``make run``: a generated password, the in-process worker
    port = free_port()
    proc = platform_run(env, port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    console = Console(proc)
    try:
        # the one-time password comes after the start-up logs and the address, as the last line
        console.wait_for("Operator account created")
        console.drain(0.5)
        assert "password '" in console.lines[-1]
        started = next(i for i, line in enumerate(console.lines) if "Uvicorn running on" in line)
        banner = next(i for i, line in enumerate(console.lines) if "Micro Platform (embedded mode)" in line)
        assert started < banner == len(console.lines) - 2
        # a request is one access line: method, path, status, milliseconds
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert '"message": "GET /healthz 200 ' in console.wait_for('"logger": "platform.access"', 10)
        # the scheduler runs tasks every second, silently when they succeed
        console.drain(2.5)
        assert not [line for line in console.lines if "succeeded" in line]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    console.drain(0.5)
    assert code == 0 and console.lines[-1] == "Stopped."


def test_platform_run__a_forwarded_for_header_names_no_new_address(tmp_path):
    # uvicorn trusted X-Forwarded-For from 127.0.0.1 by default, so a local caller locked out of
    # /o/token/ (or throttled) named a new address with each request and got a new budget, though
    # PLATFORM_TRUSTED_PROXIES is 0
    env = {**platform_env(tmp_path), "PLATFORM_TOKEN_FAILURE_LIMIT": "1"}
    port = free_port()
    proc = platform_run(env, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, proc, 60)
        bad = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "wrong"}
        assert httpx.post(f"{base}/o/token/", data=bad, timeout=10).status_code == 401
        spoofed = httpx.post(
            f"{base}/o/token/", data=bad, headers={"X-Forwarded-For": "10.9.9.9"}, timeout=10
        )
        assert spoofed.status_code == 429
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
