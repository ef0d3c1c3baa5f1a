"""The processes a fault test breaks: its own PostgreSQL and Redis, two web nodes, two Celery
workers and one beat, each of which the tests can stop, kill and start again.

PostgreSQL and Redis are private to the run (a temporary data directory, free ports), never the
servers other test runs share: restarting those would break them.  ``initdb`` refuses to run as
root, so as root the PostgreSQL commands run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.bench.harness import child_pids
from tests.servers import ROOT, free_port

PG_BIN = Path(os.environ.get("PLATFORM_FAULT_PG_BIN", "/usr/lib/postgresql/15/bin"))


def pg_bin() -> Path | None:
    """The PostgreSQL server binaries (``initdb``, ``pg_ctl``): PLATFORM_FAULT_PG_BIN, else the
    newest /usr/lib/postgresql/<version>/bin; None when there are none."""
    if (PG_BIN / "initdb").exists():
        return PG_BIN
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Postgres:
    """A PostgreSQL server of its own: ``initdb`` into ``root``, ``pg_ctl`` to start and stop."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgres://platform@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        binaries = pg_bin()
        if binaries is None:
            raise RuntimeError("no PostgreSQL server binaries (set PLATFORM_FAULT_PG_BIN)")
        self.bin = binaries
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "platform",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, *command: str) -> None:
        subprocess.run(_as_postgres(list(command)), check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=on -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        """``immediate``: the server quits without a checkpoint, as a crash would (recovery at start)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def signal(self, sig: int) -> None:
        """``sig`` to the server and every process it started (SIGSTOP: a server that hangs)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        for pid in [postmaster, *_descendants(postmaster)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')


@dataclass
class Proc:
    """One process (and its children) in a process group of its own, logging to ``log``."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> Proc:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n--- start {self.starts} ---\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the process and everything it started, as when its machine dies: its own
        group and its children's (``platform serve`` starts each child in a group of its own),
        no clean-up."""
        if self.proc is None:
            return
        groups = {self.proc.pid}
        for pid in _descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def _descendants(pid: int) -> list[int]:
    """Every process ``pid`` started, and theirs."""
    found: list[int] = []
    todo = [pid]
    while todo:
        children = child_pids(todo.pop())
        found += children
        todo += children
    return found


class Redis(Proc):
    """A redis-server of its own (no persistence: a restart loses everything it held)."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        root.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
        ]
        super().__init__("redis", command, dict(os.environ), root / "redis.log")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def wait(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis on {self.port} did not start")


def platform_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("platform")), *args]


def celery_command(role: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "platformsite", role, "--loglevel", "INFO", *args]


def wait_http(url: str, procs: list[Proc], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited ({proc.log})")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {seconds} s")


def wait_log(proc: Proc, text: bytes, seconds: float = 60) -> None:
    """Wait for ``text`` in the log written since the process's latest start."""
    deadline = time.monotonic() + seconds
    marker = f"--- start {proc.starts} ---".encode()
    while time.monotonic() < deadline:
        log = proc.log.read_bytes()
        if text in log[log.rfind(marker) :]:
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.log})")
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not log {text!r} within {seconds} s")
