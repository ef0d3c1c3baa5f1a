"""The CLI beside the service groups: --output table|json, platform login and the saved
credentials (mode 0600), bash completion that completes."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import sys

import httpx
import pytest

from platform_client import credentials
from platform_client.cli import _extras
from platform_client.cli._main import build_parser, main


@pytest.fixture
def creds_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "platform" / "credentials"
    monkeypatch.setenv("PLATFORM_CREDENTIALS", str(path))
    for name in ("PLATFORM_URL", "PLATFORM_CLIENT_ID", "PLATFORM_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_table__lists_objects_and_pages():
    text = _extras.table(
        {"results": [{"name": "orders", "nodes": 2}, {"name": "payments", "extra": {"a": 1}}]}
    )
    header, first, second = text.splitlines()
    assert header.split() == ["NAME", "NODES", "EXTRA"]
    assert first.split() == ["orders", "2"] and second.split() == ["payments", "a=1"]
    assert _extras.table({"allowed": True}).splitlines()[1].split() == ["allowed", "true"]
    assert len(_extras.table([{"long": "x" * 500}]).splitlines()[1]) == _extras.MAX_CELL
    assert _extras.table([]) == _extras.table({"results": [], "next": None}) == "(none)"


def test_table__what_does_not_fit_a_cell_gets_a_section():
    service = {
        "name": "orders",
        "checks": {"passing": 2, "critical": 0},
        "versions": [
            {"version": "1.0", "nodes": [{"id": "a", "port": 1}, {"id": "b", "port": 2}]},
            {"version": "2.0", "nodes": [{"id": "c", "port": 3}]},
        ],
        "explain": ["version 1.0: 50% of the requests", "version 2.0: 50% of the requests"],
    }
    assert _extras.table(service).split("\n\n") == [
        "KEY     VALUE\nname    orders\nchecks  passing=2, critical=0",
        "VERSIONS\nVERSION\n1.0\n2.0",
        "VERSIONS: NODES\nVERSION  ID  PORT\n1.0      a   1\n1.0      b   2\n2.0      c   3",
        "EXPLAIN\nversion 1.0: 50% of the requests\nversion 2.0: 50% of the requests",
    ]
    # An object's text too long for a cell is shown whole (a token was cut to 60 characters).
    token = {"access_token": "t" * 800, "token_type": "Bearer", "checksum": "c" * 64}
    assert _extras.table(token).split("\n\n") == [
        f"KEY         VALUE\ntoken_type  Bearer\nchecksum    {'c' * 64}",
        f"ACCESS_TOKEN\n{'t' * 800}",
    ]
    # A short list of strings stays in its cell; a list of objects in a row of a list too.
    assert _extras.table({"scopes": ["a", "b"]}).splitlines()[1].split() == ["scopes", "a,", "b"]
    listed = _extras.table([{"name": "orders", "versions": [{"version": "1.0"}]}]).split("\n\n")
    assert listed == ["NAME\norders", "VERSIONS\nNAME    VERSION\norders  1.0"]
    # The leading column is named after its parent when the nested rows have one of that name.
    members = _extras.table({"members": [{"node": "a", "checks": [{"node": "b", "id": 1}]}]})
    assert members.split("\n\n")[1].splitlines()[:2] == ["MEMBERS: CHECKS", "MEMBERS.NODE  NODE  ID"]
    # ... and does not lead them when they hold it already.
    members = _extras.table({"members": [{"node": "a", "checks": [{"node": "a", "id": 1}]}]})
    assert members.split("\n\n")[1].splitlines()[:2] == ["MEMBERS: CHECKS", "NODE  ID"]


@pytest.mark.django_db(transaction=True)
def test_output_table_and_json(live_server, service_account, capsys, creds_file):
    client_id, secret = service_account("auth:read")
    base = ["--url", live_server.url, "--client-id", client_id, "--client-secret", secret]
    assert main([*base, "auth", "--output", "table", "whoami"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["KEY", "VALUE"] and client_id in out
    assert main([*base, "--output", "json", "auth", "whoami"]) == 0
    assert json.loads(capsys.readouterr().out)["client_id"] == client_id
    assert main([*base, "auth", "whoami"]) == 0  # not a terminal: JSON
    assert json.loads(capsys.readouterr().out)["client_id"] == client_id
    assert main([*base, "auth", "whoami", "--output", "table"]) == 0  # after the verb too
    assert capsys.readouterr().out.splitlines()[0].split() == ["KEY", "VALUE"]


@pytest.mark.django_db(transaction=True)
def test_login__checks_saves_0600_and_later_commands_use_it(
    live_server, service_account, capsys, creds_file, monkeypatch
):
    client_id, secret = service_account("auth:read")
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert main(["--url", live_server.url, "--client-id", client_id, "login"]) == 1
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "invalid_client"
    assert not creds_file.exists()  # nothing saved for wrong credentials
    monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))
    assert main(["--url", live_server.url, "--client-id", client_id, "login"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["whoami"]["client_id"] == client_id and answer["client_secret_from"] == "stdin"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(creds_file.parent.stat().st_mode) == 0o700
    assert credentials.load() == {"url": live_server.url, "client_id": client_id, "client_secret": secret}
    assert main(["auth", "whoami"]) == 0  # no option, no variable: the saved file
    assert json.loads(capsys.readouterr().out)["client_id"] == client_id
    creds_file.chmod(0o644)
    assert main(["auth", "whoami"]) == 1
    assert "readable by others" in json.loads(capsys.readouterr().err)["error"]["message"]


def test_login__the_secret_taken_from_the_environment_is_said_so(
    live_server, service_account, capsys, creds_file, monkeypatch
):
    # a secret piped in was ignored without a word when PLATFORM_CLIENT_SECRET was set
    client_id, secret = service_account("auth:read")
    monkeypatch.setenv("PLATFORM_CLIENT_SECRET", secret)
    monkeypatch.setattr("sys.stdin", io.StringIO("another\n"))
    assert main(["--url", live_server.url, "--client-id", client_id, "login"]) == 0
    assert json.loads(capsys.readouterr().out)["client_secret_from"] == "PLATFORM_CLIENT_SECRET"


@pytest.mark.parametrize("typed", ["", "\n"])
def test_login__an_empty_secret__exit_2_missing_credentials(creds_file, capsys, monkeypatch, typed):
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(["--url", "http://127.0.0.1:9", "--client-id", "abc", "login"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "missing_credentials"
    assert not creds_file.exists()


def test_a_corrupt_credentials_file__the_error_names_it(creds_file, capsys):
    # the message was the bare JSON error ("Expecting property name ..."), naming no file
    creds_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    creds_file.write_text("{not json")
    creds_file.chmod(0o600)
    assert main(["auth", "whoami"]) == 2
    message = json.loads(capsys.readouterr().err)["error"]["message"]
    assert str(creds_file) in message and "log in again" in message


def test_no_credentials_anywhere__exit_2(creds_file, capsys):
    assert main(["auth", "whoami"]) == 2
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "missing_credentials"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion__completes_groups_verbs_and_options():
    script = _extras.bash_completion(build_parser())

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        program = (
            script
            + "COMP_WORDS=("
            + " ".join(f"'{w}'" for w in words)
            + f'); COMP_CWORD={len(words) - 1}; _platform_complete; echo "${{COMPREPLY[@]}}"'
        )
        return subprocess.run(
            ["bash", "-c", program], capture_output=True, text=True, check=True
        ).stdout.split()

    assert {"auth", "config", "discovery", "login", "completion"} <= set(complete("platform "))
    assert complete("platform con") == ["config"]
    assert "get" in complete("platform config ") and "namespaces" in complete("platform config ")
    assert complete("platform --url x config wat") == ["watch"]
    assert "--output" in complete("platform auth --o")
    # an option's value: its choices, nothing for a free value (the verbs were offered), and the
    # value is not taken for a command word
    assert complete("platform config get --output ") == ["json", "table"]
    assert complete("platform --output t") == ["table"]
    assert complete("platform config get --env ") == []
    assert complete("platform config get --env get --out") == ["--output"]
    # a verb given as a positional argument's choices, and the options after it
    assert {"list", "get", "create", "rotate", "delete"} <= set(complete("platform auth accounts "))
    assert {"bash", "zsh", "fish"} <= set(complete("platform completion "))
    assert complete("platform auth accounts create --sc") == ["--scopes"]
    assert complete("platform auth accounts list --output ") == ["json", "table"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="needs fish (apt-get install fish)")
def test_fish_completion__completes_groups_verbs_and_options(tmp_path):
    script = tmp_path / "platform.fish"
    script.write_text(_extras.fish_completion(build_parser()))

    def complete(line: str) -> list[str]:
        program = f"source {script}; complete -C '{line}'"
        out = subprocess.run(
            ["fish", "--no-config", "-c", program], capture_output=True, text=True, check=True
        )
        return [candidate.split("\t")[0] for candidate in out.stdout.split("\n") if candidate]

    assert {"auth", "config", "discovery", "login", "completion"} <= set(complete("platform "))
    assert complete("platform con") == ["config"]
    assert {"get", "namespaces"} <= set(complete("platform config "))
    assert complete("platform --url x config wat") == ["watch"]
    assert "--output" in complete("platform auth --o")
    # an option's value: its choices, nothing for a free value (the verbs were offered), and the
    # value is not taken for a command word
    assert complete("platform config get --output ") == ["json", "table"]
    assert complete("platform --output t") == ["table"]
    assert complete("platform config get --env ") == []
    assert complete("platform config get --env get --out") == ["--output"]
    # a verb given as a positional argument's choices, and the options after it
    assert {"list", "get", "create", "rotate", "delete"} <= set(complete("platform auth accounts "))
    assert {"bash", "zsh", "fish"} <= set(complete("platform completion "))
    assert complete("platform auth accounts create --sc") == ["--scopes"]
    assert complete("platform auth accounts list --output ") == ["json", "table"]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh (apt-get install zsh)")
def test_zsh_completion__completes_groups_verbs_and_options(tmp_path):
    script = tmp_path / "_platform"
    script.write_text(_extras.zsh_completion(build_parser()))

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        # compadd and compdef exist only inside zsh's completion system: stand-ins that print
        # the candidates matching the word being completed (what compadd would offer).
        program = (
            "compdef() { : }\n"
            'compadd() { shift; local w; for w in "$@"; do [[ $w == ${PREFIX}* ]] && print -r -- $w; done }\n'
            f"source {script}\n"
            "words=(" + " ".join(f"'{w}'" for w in words) + f"); CURRENT={len(words)}; PREFIX='{words[-1]}'\n"
            "_platform; true\n"
        )
        out = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert {"auth", "config", "discovery", "login", "completion"} <= set(complete("platform "))
    assert complete("platform con") == ["config"]
    assert {"get", "namespaces"} <= set(complete("platform config "))
    assert complete("platform --url x config wat") == ["watch"]
    assert "--output" in complete("platform auth --o")
    # an option's value: its choices, nothing for a free value (the verbs were offered), and the
    # value is not taken for a command word
    assert complete("platform config get --output ") == ["json", "table"]
    assert complete("platform --output t") == ["table"]
    assert complete("platform config get --env ") == []
    assert complete("platform config get --env get --out") == ["--output"]
    # a verb given as a positional argument's choices, and the options after it
    assert {"list", "get", "create", "rotate", "delete"} <= set(complete("platform auth accounts "))
    assert {"bash", "zsh", "fish"} <= set(complete("platform completion "))
    assert complete("platform auth accounts create --sc") == ["--scopes"]
    assert complete("platform auth accounts list --output ") == ["json", "table"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_command__prints_the_shells_script(shell, capsys):
    assert main(["completion", shell]) == 0
    assert "completion for platform" in capsys.readouterr().out


def test_events_table__the_columns_that_tell_events_apart():
    from platform_client.cli.events import event_rows

    event = {"id": 3, "type": "a.b", "source": "/s", "specversion": "1.0", "data": {"n": 1}, "time": "t"}
    assert event_rows({"results": [event], "next": None}) == [
        {"id": 3, "time": "t", "type": "a.b", "source": "/s", "subject": "", "data": {"n": 1}}
    ]


def test_table__a_page_with_a_count_says_it():
    page = {"results": [{"id": 1}], "next": None, "count": 12}
    assert _extras.table(page).split("\n\n") == ["ID\n1", "count: 12"]


def test_monitor_history_table__when_first():
    from platform_client.cli.monitor import history_view

    flip = {"id": 4, "check": None, "service": "orders", "node": "", "name": "", "old": "healthy"}
    flip.update(new="degraded", reason="1 of 2 nodes passing", output="", at="t", alert="", suppressed="")
    uptime = [{"month": "2026-12", "uptime": 100.0}]
    flips, months = _extras.table(history_view({"flips": [flip], "uptime": uptime})).split("\n\n")
    assert flips.splitlines()[1].split() == [
        "AT",
        "NODE",
        "NAME",
        "OLD",
        "NEW",
        "REASON",
        "ALERT",
        "SUPPRESSED",
    ]
    assert months.splitlines()[0] == "UPTIME"


def test_trace_tables_show_times_and_durations_readably():
    from platform_client.cli.trace import readable

    rows = readable([{"trace_id": "ab", "start": 1796390615481294, "duration": 416150, "spans": 5}])
    assert rows == [
        {"trace_id": "ab", "start": "2026-12-04T13:23:35.481Z", "duration": "416.150 ms", "spans": 5}
    ]
    assert readable({"name": "orders", "last_seen": 0}) == {
        "name": "orders",
        "last_seen": "1970-01-01T00:00:00.000Z",
    }
    assert readable({"end": 1796390615481294, "services": {"web": 1, "api": 2}}) == {
        "end": "2026-12-04T13:23:35.481Z",
        "services": "web: 1, api: 2",
    }


def test_a_closed_stdout_ends_the_command_quietly():
    """``platform ... | head``: the reader goes away first; no traceback, SIGPIPE's exit status."""
    command = [sys.executable, "-m", "platform_client.cli._main", "completion", "bash"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the interpreter has even started: every write fails

    _, err = proc.communicate(timeout=60)

    assert (proc.returncode, err) == (141, b"")


def test_ping_request__an_unknown_action__is_refused_unsent(monkeypatch):
    from platform_client import monitor

    monkeypatch.setattr(monitor.httpx, "post", lambda *a, **k: pytest.fail("sent"))
    for action in ("banana", "256", "1000", "٣"):  # "٣" is a digit, not an ASCII one
        with pytest.raises(ValueError, match="An action is success, start, fail, log"):
            monitor.ping_request("http://127.0.0.1:9", "abc", action)
    assert monitor.send_ping("http://127.0.0.1:9", "abc", "banana") == 0  # a ping never raises


def test_a_commands_options_may_come_between_its_arguments(capsys):
    # argparse gave the optional PATH and VALUE nothing once --merge came first, then refused them
    options = build_parser().parse_args(["config", "set", "payments", "--merge", "db", '{"host": "y"}'])
    assert (options.namespace, options.path, options.value, options.merge) == (
        "payments",
        "db",
        '{"host": "y"}',
        True,
    )
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["config", "get", "payments", "a", "b", "c"])
    assert refused.value.code == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["message"] == "unrecognized arguments: b c"
    assert error["details"]["usage"].startswith("usage: platform config get")  # was the top command's


def test_ping_request__an_int_exit_status_is_sent__another_type_refused_unsent(monkeypatch):
    from platform_client import monitor

    sent: list[str] = []
    monkeypatch.setattr(monitor.httpx, "post", lambda url, **k: sent.append(url) or httpx.Response(200))
    for status in (0, 3, 255):
        monitor.ping_request("http://127.0.0.1:9", "abc", status)
    assert sent == [
        "http://127.0.0.1:9/ping/abc/0",
        "http://127.0.0.1:9/ping/abc/3",
        "http://127.0.0.1:9/ping/abc/255",
    ]

    for action in (-1, 256, True, False, 3.0, None, b"fail"):
        with pytest.raises(ValueError, match="An action is success, start, fail, log"):
            monitor.ping_request("http://127.0.0.1:9", "abc", action)
    with pytest.raises(ValueError):
        monitor.ping_request("http://127.0.0.1:9", 5, "fail")
    # a ping never raises
    assert [monitor.send_ping("http://127.0.0.1:9", "abc", True), monitor.send_ping("http://x", 5)] == [0, 0]
    assert len(sent) == 3

    with pytest.raises(SystemExit), monitor.ping("abc", "http://127.0.0.1:9"):
        raise SystemExit(True)  # Python exits with 1
    assert sent[-1] == "http://127.0.0.1:9/ping/abc/1"
