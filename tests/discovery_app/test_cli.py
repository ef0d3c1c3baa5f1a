"""``platform discovery ...`` against a live platform."""

from __future__ import annotations

import json
import threading
import time

import pytest

from discovery_app import services
from discovery_app.models import Node

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("discovery", "discovery:read", "discovery:write")


def test_cli__register_get_list_deregister(cli):
    code, node, _ = cli(
        "register",
        "orders",
        "--address",
        "10.0.0.9",
        "--port",
        "8080",
        "--id",
        "orders-x",
        "--version",
        "2.0",
        "--metadata",
        "zone=eu",
    )
    assert code == 0 and node["id"] == "orders-x" and node["metadata"] == {"zone": "eu"}
    code, listed, _ = cli("list")
    assert [(s["name"], s["nodes"]) for s in listed] == [("orders", 1)]
    code, document, _ = cli("get", "orders", "--label", "zone:eu", "--passing")
    assert document["versions"][0]["nodes"][0]["id"] == "orders-x"
    code, gone, _ = cli("deregister", "orders-x")
    assert (code, gone) == (0, {"deregistered": "orders-x"})
    assert not Node.objects.exists()


def test_cli__bad_port__prints_the_error_and_exits_1(cli):
    code, _, err = cli("register", "orders", "--address", "10.0.0.9", "--port", "0")
    assert code == 1
    error = json.loads(err)["error"]
    assert error["status"] == 400 and "port" in error["details"]


def test_cli__get_unknown__exits_1(cli):
    code, _, err = cli("get", "nope")
    assert code == 1 and json.loads(err)["error"]["status"] == 404


def test_cli__watch__prints_changes(cli, capsys):
    services.node_register(node_id="a", service="orders", address="10.0.0.1", port=80)

    earlier = {thread for thread in threading.enumerate() if thread.name == "discovery-watch"}

    def later():
        # Changes are told from the index the CLI read first: a node registered before that read
        # is no change, and the CLI would wait for ever (a slow start-up on a busy machine did).
        # Its watcher thread starts once that read is done.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            thread.name == "discovery-watch" and thread not in earlier for thread in threading.enumerate()
        ):
            time.sleep(0.05)
        time.sleep(0.5)
        services.node_register(node_id="b", service="orders", address="10.0.0.2", port=80)

    writer = threading.Thread(target=later)
    writer.start()
    code, out, _ = cli("watch", "orders", "--count", "1", "--no-websocket", "--wait", "1")
    writer.join()  # its after-commit work (document, events) must end before the test's flush
    # So must the live server's work for the CLI: its watcher thread may have started another
    # blocking query (it lasts up to --wait) before it saw the CLI stop; a request still running
    # on the live server during the flush deadlocked with it once.
    for thread in threading.enumerate():
        if thread.name == "discovery-watch":
            thread.join(timeout=5)
    time.sleep(1.5)
    assert code == 0
    first_line = out.splitlines()[0] if isinstance(out, str) else None
    change = json.loads(first_line)
    assert change["node"]["id"] == "b" and change["action"] == "create"
    assert out.splitlines()[1:] == ['{"changes": 1}']  # JSON lines to the end


@pytest.mark.parametrize(("stop", "exit_code"), [("SIGTERM", 0), ("SIGINT", 130)])
def test_cli__register_hold__sigterm_or_ctrl_c_deregisters(live_server, service_account, stop, exit_code):
    # systemd, docker stop and kill end a process with SIGTERM, not Ctrl-C: a stop asked for, exit
    # 0; Ctrl-C is an interrupt, 130 as for every command (it was 0)
    import os
    import signal
    import subprocess
    import sys

    client_id, secret = service_account("discovery:read", "discovery:write")
    env = {**os.environ, "PLATFORM_URL": live_server.url, "PLATFORM_CLIENT_ID": client_id}
    env["PLATFORM_CLIENT_SECRET"] = secret
    command = [sys.executable, "-m", "platform_client.cli._main", "discovery", "register", "orders"]
    command += ["--address", "10.0.0.9", "--port", "8080", "--id", "orders-held", "--hold"]
    held = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT handled as a terminal's foreground job has it (a shell's background job, as CI
        # may run this suite in, ignores it, and a Python started so never sees Ctrl-C)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not Node.objects.filter(id="orders-held").exists():
            assert held.poll() is None and time.monotonic() < deadline, held.stderr.read()
            time.sleep(0.1)
        held.send_signal(getattr(signal, stop))
        held.wait(timeout=30)
    finally:
        held.kill()
    assert not Node.objects.filter(id="orders-held").exists()
    assert held.returncode == exit_code, held.stderr.read()
