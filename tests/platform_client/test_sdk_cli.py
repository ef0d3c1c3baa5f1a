"""``platform`` as the SDK distribution installs it: the service commands without the server's;
with the server installed too it is the server's own ``platform``."""

from __future__ import annotations

import json

import pytest

from platform_client import __version__
from platform_client.cli import _main


@pytest.fixture
def sdk_only(monkeypatch):
    monkeypatch.setattr(_main, "_server_main", lambda: None)


def test_server_commands__refused_with_a_clear_error(sdk_only, capsys):
    for command in ("run", "serve", "manage"):
        assert _main.main([command]) == 2
        error = json.loads(capsys.readouterr().err)["error"]
        assert error["code"] == "server_not_installed" and "micro-platform" in error["message"]


def test_version_and_service_groups(sdk_only, capsys):
    with pytest.raises(SystemExit) as raised:
        _main.main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"micro-platform-client {__version__}"
    choices = _main.build_parser()._subparsers._group_actions[0].choices
    assert {"auth", "config", "discovery", "events", "router", "trace"} <= set(choices)
    assert not {"run", "serve", "manage"} & set(choices)


@pytest.mark.django_db(transaction=True)
def test_service_command_against_a_live_platform(sdk_only, live_server, service_account, capsys):
    client_id, secret = service_account("auth:read")
    argv = ["--url", live_server.url, "--client-id", client_id, "--client-secret", secret, "auth", "whoami"]
    assert _main.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["client_id"] == client_id


def test_with_the_server_installed__it_is_the_servers_platform(monkeypatch):
    calls = []
    monkeypatch.setattr(_main, "_server_main", lambda: lambda argv: calls.append(argv) or 0)
    assert _main.main(["run", "--port", "9"]) == 0
    assert calls == [["run", "--port", "9"]]
    from platformsite.cli import main as server_main

    monkeypatch.undo()  # the real lookup: the server is installed in this environment
    assert _main._server_main() is server_main
