"""``platform serve``'s process manager: its children run until it stops, and one that exits is
started again, as a process manager would (a Celery worker exits when Redis restarts under it).

A child that exits is started again after a pause: 1 s after a run of at least ``min_uptime``
seconds, doubling for each exit in a row that came sooner after its start, up to ``max_pause``
(with the defaults the fifth quick exit comes first). A child that exits ``crash_limit`` times
in a row that soon is broken rather than unlucky (a port in use, a setting it refuses):
everything stops, with its exit code (128 + N when signal N killed it). Each child leads a
process group of its own, so what it started (granian's workers) ends with it; and on Linux each
is sent SIGTERM if ``platform serve`` itself dies (``kill -9``, the OOM killer), so that none is
left serving the port without it, or beside the next one started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    #: exits in a row, each within ``min_uptime`` of its start
    quick_exits: int = 0
    #: when to start it again, while it is not running
    restart_at: float = field(default=0.0)


class Supervisor:
    def __init__(
        self,
        commands: Mapping[str, list[str]],
        env: Mapping[str, str],
        *,
        min_uptime: float = 10.0,
        crash_limit: int = 5,
        first_pause: float = 1.0,
        max_pause: float = 30.0,
        tick: float = 0.2,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
    ) -> None:
        self.children = [Child(name, list(command)) for name, command in commands.items()]
        self.env = dict(env)
        self.min_uptime, self.crash_limit = min_uptime, crash_limit
        self.first_pause, self.max_pause, self.tick = first_pause, max_pause, tick
        self.say = say

    def run(self, stopping: Callable[[], bool]) -> int:
        """Start every child and keep them running until ``stopping()``; 0, or the exit code of a
        child that kept failing at its start."""
        for child in self.children:
            self._start(child)
        try:
            while not stopping():
                code = self.check(time.monotonic())
                if code is not None:
                    return code
                time.sleep(self.tick)
            return 0
        finally:
            self.stop()

    def check(self, now: float) -> int | None:
        """Start again what is due; None, or the exit code to stop everything with."""
        for child in self.children:
            if child.process is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            _signal_group(child.process, signal.SIGKILL)  # what it left behind (granian's workers)
            child.process = None
            child.quick_exits = child.quick_exits + 1 if now - child.started < self.min_uptime else 0
            if child.quick_exits >= self.crash_limit:
                times = child.quick_exits
                self.say(
                    f"{child.name} exited with {code}, {times} times in a row soon after starting; stopping."
                )
                return 128 - code if code < 0 else code or 1  # killed by signal N: 128 + N, as shells say
            pause = min(self.first_pause * 2**child.quick_exits, self.max_pause)
            child.restart_at = now + pause
            self.say(f"{child.name} exited with {code}; starting it again in {pause:g} s.")
        return None

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the children, and kill those still running after ``grace`` seconds."""
        running = [child.process for child in self.children if child.process is not None]
        for process in running:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            _signal_group(process, signal.SIGKILL)
        for child in self.children:
            child.process = None

    def _start(self, child: Child) -> None:
        # its own process group: a child killed outright (SIGKILL, the OOM killer) leaves its own
        # children (granian's workers, still holding the port) to be ended with it, not orphaned
        child.process = subprocess.Popen(  # noqa: S603
            child.command, env=self.env, start_new_session=True, preexec_fn=_ended_with(os.getpid())
        )
        child.started = time.monotonic()


#: Linux's ``prctl`` option: the signal a process is sent when its parent dies.
_PR_SET_PDEATHSIG = 1


def _ended_with(parent: int) -> Callable[[], None] | None:
    """What a child runs before its program (Linux): SIGTERM to it when ``parent`` dies, even
    by SIGKILL.  ``platform serve`` starts its children from its only thread (the death signal
    follows the thread that started a process)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def end_with_parent() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the call
            os.kill(os.getpid(), signal.SIGTERM)

    return end_with_parent


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (itself and what it started)."""
    with contextlib.suppress(ProcessLookupError):  # the group is empty: nothing left
        os.killpg(process.pid, signum)
