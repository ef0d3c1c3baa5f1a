"""Processes, load and measurements for the benchmark: servers in their own process groups,
wrk runs and their parsed figures, resident memory read from ``/proc``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


# --- Ports and HTTP -------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]


def http(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> HttpAnswer:
    """One request; any HTTP status is an answer (only connection failures raise)."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, exc.read(), dict(exc.headers))


# --- Server processes -----------------------------------------------------------------------------


@dataclass
class Server:
    """A server process started in its own session, so its whole process group can be stopped."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    base_url: str
    proc: subprocess.Popen | None = None
    _log: object = None

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_errors(self, limit: int = 3) -> str:
        """The last errors the server logged (JSON log lines: message and exception's last line)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        found = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and str(record.get("level", "")).lower() in {"error", "critical"}:
                exception = str(record.get("exception", "")).strip().splitlines()
                found.append(f"{record.get('message', '')} {exception[-1] if exception else ''}".strip())
        if not found:
            return self.log_tail(10)
        return "\n".join(found[-limit:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL whatever is left after ``timeout``."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None or _group_alive(proc.pid):
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and (proc.poll() is None or _group_alive(proc.pid)):
                time.sleep(0.1)
            if proc.poll() is None or _group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def worker_pids(self) -> list[int]:
        """The server's worker processes: children of the main process (itself if it has none)."""
        if self.proc is None:
            return []
        children = child_pids(self.proc.pid)
        return children or [self.proc.pid]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- /proc ----------------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, found by scanning ``/proc/<n>/stat``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_mib(pid: int) -> float | None:
    """Resident set size (VmRSS) of a process in MiB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def workers_rss(server: Server) -> dict[str, float]:
    """VmRSS in MiB of each worker process of a server, by pid."""
    figures = {}
    for pid in server.worker_pids():
        value = rss_mib(pid)
        if value is not None:
            figures[str(pid)] = round(value, 1)
    return figures


# --- Load with wrk --------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx_3xx: int
    socket_errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: CPUs busy on average during the run: the server, wrk, and everything else on the machine.
    cpu: dict[str, float] = field(default_factory=dict)
    #: Server CPU time per request (all its processes): steadier than req/s on a busy machine.
    server_cpu_us_per_request: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "valid": self.valid}


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """The figures of a ``wrk --latency`` report."""

    def search(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    percentiles = {
        int(m.group(1)): _duration_ms(m.group(2))
        for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s|m|h))\s*$", output, re.MULTILINE)
    }
    if 50 not in percentiles or 99 not in percentiles:
        raise BenchError(f"wrk printed no latency distribution (was --latency given?):\n{output}")
    total = search(r"^\s*(\d+) requests in ([\d.]+(?:us|ms|s|m|h))")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.MULTILINE
    )
    result = LoadResult(
        requests_per_s=float(search(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=percentiles[50],
        p90_ms=percentiles.get(90, float("nan")),
        p99_ms=percentiles[99],
        requests=int(total.group(1)),
        seconds=round(_duration_ms(total.group(2)) / 1000, 3),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
    if errors:
        result.socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, errors.groups()), strict=True)
        )
    if result.non_2xx_3xx:
        result.problems.append(f"{result.non_2xx_3xx} responses were not 2xx/3xx")
    if result.requests == 0:
        result.problems.append("no request completed")
    if any(result.socket_errors.get(kind) for kind in ("connect", "write")):
        result.problems.append(f"socket errors: {result.socket_errors}")
    return result


def lua_string(value: str) -> str:
    """``value`` as a Lua string literal."""
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= code < 127:
            out.append(char)
        else:
            out.extend(f"\\{byte:03d}" for byte in char.encode())
    return '"' + "".join(out) + '"'


def wrk_script(method: str, headers: Mapping[str, str], body: str, pause_ms: float = 0.0) -> str:
    """A wrk Lua script sending the same request every time.

    With ``pause_ms`` each connection waits a random 0 to 2 x ``pause_ms`` (whole milliseconds)
    before each request, which turns wrk's closed loop into an offered load of about
    connections / pause per second, spread out rather than in waves (a little less when
    responses take a while).  wrk times a request from when it is written, so the pause is not
    counted as latency.
    """
    lines = [f"wrk.method = {lua_string(method)}"]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    if body:
        lines.append(f"wrk.body = {lua_string(body)}")
    if pause_ms > 0:
        lines += ["function delay()", f"  return math.floor(math.random() * {2 * pause_ms:.3f})", "end"]
    return "\n".join(lines) + "\n"


@dataclass
class Load:
    threads: int = 2
    connections: int = 64
    warmup_s: float = 3.0
    duration_s: float = 10.0
    timeout_s: float = 5.0

    #: Other work on the machine (CPUs busy outside the server and wrk) that makes a run noisy.
    noisy_cpus: float = 0.25

    def run(self, url: str, script: Path, seconds: float, server_pgid: int | None = None) -> LoadResult:
        command = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(round(seconds), 1)}s",
            f"--timeout={round(self.timeout_s)}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        busy0, server0, wrk0, t0 = (
            system_busy_seconds(),
            group_cpu_seconds(server_pgid) if server_pgid else 0.0,
            _children_cpu(),
            time.monotonic(),
        )
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=seconds + 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - t0
        busy = system_busy_seconds() - busy0
        server = group_cpu_seconds(server_pgid) - server0 if server_pgid else 0.0
        wrk = _children_cpu() - wrk0
        if proc.returncode != 0:
            raise BenchError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
        result = parse_wrk(out)
        result.cpu = {
            "server": round(server / elapsed, 2),
            "wrk": round(wrk / elapsed, 2),
            "other": round(max(busy - server - wrk, 0.0) / elapsed, 2),
        }
        if server_pgid and result.requests:
            result.server_cpu_us_per_request = round(server / result.requests * 1e6, 1)
        if result.cpu["other"] > self.noisy_cpus:
            result.warnings.append(
                f"other work on the machine kept {result.cpu['other']:.2f} CPUs busy: figures are noisy"
            )
        return result

    def measure(self, url: str, script: Path, server_pgid: int | None = None) -> LoadResult:
        """A warm-up run (discarded), then the measured run."""
        if self.warmup_s > 0:
            self.run(url, script, self.warmup_s)
        return self.run(url, script, self.duration_s, server_pgid)


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


# --- The record -----------------------------------------------------------------------------------


def git_commit() -> str | None:
    """HEAD's commit, read from ``.git`` (no git command is run)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).exists():
            return (git / ref).read_text().strip()
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
    except OSError:
        return None
    return None


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


# --- Running a benchmark command --------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_stoppable(name: str, run: Callable[[], int], cleanup: Callable[[], None]) -> int:
    """``run()``'s exit status; Ctrl-C, kill and hang-up stop it, and ``cleanup()`` (which stops
    the servers) runs whatever happens, even when the command was started in the background."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping servers", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup()
