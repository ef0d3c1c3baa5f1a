"""``platform serve``'s children: one that exits is started again; one that keeps failing at its
start stops them all."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from platformsite.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[2]

#: Counts its starts in the file it is given, then exits with code 3.
EXITS = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.write_text(p.read_text() + 'x'); sys.exit(3)"
SLEEPS = "import time; time.sleep(60)"


def starts(path) -> int:
    return len(path.read_text())


def until(condition, supervisor, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code = supervisor.check(time.monotonic())
        if condition() or code is not None:
            return code
        time.sleep(0.01)
    raise AssertionError("the condition did not hold in time")


def test_a_child_that_exits_is_started_again_and_the_others_keep_running(tmp_path):
    count = tmp_path / "starts"
    count.write_text("")
    said = []
    supervisor = Supervisor(
        {"worker": [sys.executable, "-c", EXITS, str(count)], "web": [sys.executable, "-c", SLEEPS]},
        {},
        min_uptime=0.0,  # every run counts as long: never a crash loop
        first_pause=0.01,
        say=said.append,
    )
    for child in supervisor.children:
        supervisor._start(child)
    try:
        web = supervisor.children[1].process
        assert until(lambda: starts(count) >= 3, supervisor) is None
        assert supervisor.children[1].process is web and web.poll() is None
        assert "worker exited with 3; starting it again in 0.01 s." in said
    finally:
        supervisor.stop()
    assert web.poll() is not None


def test_a_child_failing_at_every_start_stops_everything_with_its_code(tmp_path):
    count = tmp_path / "starts"
    count.write_text("")
    said = []
    supervisor = Supervisor(
        {"worker": [sys.executable, "-c", EXITS, str(count)], "web": [sys.executable, "-c", SLEEPS]},
        {},
        min_uptime=60.0,
        crash_limit=3,
        first_pause=0.01,
        tick=0.01,
        say=said.append,
    )
    assert supervisor.run(lambda: False) == 3
    assert starts(count) == 3
    assert said[-1] == "worker exited with 3, 3 times in a row soon after starting; stopping."
    assert said[:2] == [
        "worker exited with 3; starting it again in 0.02 s.",
        "worker exited with 3; starting it again in 0.04 s.",
    ]
    assert all(child.process is None for child in supervisor.children)  # the web child was stopped


def test_stopping_ends_the_children(tmp_path):
    supervisor = Supervisor({"web": [sys.executable, "-c", SLEEPS]}, {}, tick=0.01)
    calls = []

    def stopping():
        calls.append(supervisor.children[0].process)
        return len(calls) > 2

    assert supervisor.run(stopping) == 0
    assert calls[-1].poll() is not None


#: Starts a grandchild that sleeps (as granian starts its workers), writes its pid, and exits.
LEAVES_A_CHILD = (
    "import pathlib, subprocess, sys; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "pathlib.Path(sys.argv[1]).write_text(str(child.pid)); sys.exit(3)"
)


def _gone(pid: int) -> bool:
    import os
    from pathlib import Path

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie (already killed, not yet reaped by init) is gone too
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:  # reaped since
        return True
    return status == "Z"


def test_what_an_exited_child_left_running_is_ended_with_it(tmp_path):
    # a child killed outright (SIGKILL: the OOM killer, kill -9) left its own children running,
    # holding its port beside the restarted child, and serving on after platform serve stopped
    pid_file = tmp_path / "grandchild"
    supervisor = Supervisor(
        {"web": [sys.executable, "-c", LEAVES_A_CHILD, str(pid_file)]},
        {},
        min_uptime=0.0,
        first_pause=60.0,  # not started again during the test
        say=lambda line: None,
    )
    supervisor._start(supervisor.children[0])
    try:
        until(lambda: supervisor.children[0].process is None, supervisor)
        grandchild = int(pid_file.read_text())
        until(lambda: _gone(grandchild), supervisor)
    finally:
        supervisor.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_children_end_when_serve_itself_is_killed(tmp_path):
    # Given platform serve's process manager running one child
    pid_file = tmp_path / "pid"
    child = (
        f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); "
        "time.sleep(60)"
    )
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from platformsite.supervisor import Supervisor; "
            f"Supervisor({{'web': [sys.executable, '-c', {child!r}]}}, {{}}).run(lambda: False)",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.01)
    pid = int(pid_file.read_text())

    # When it is killed outright (no chance to stop its children)
    serve.kill()
    serve.wait()

    # Then its child ends too, rather than serving on without it
    deadline = time.monotonic() + 10
    while not _gone(pid):
        assert time.monotonic() < deadline, "the child outlived platform serve"
        time.sleep(0.01)
