"""``platform auth ...`` against a live platform."""

from __future__ import annotations

import json

import pytest

from platformsite.cli import main

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("auth", "admin")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (("accounts", "get"), "accounts get needs the account's NAME"),
        (("accounts", "delete"), "accounts delete needs the account's NAME"),
        (("roles", "get"), "roles get needs the role's NAME"),
        (("rules", "delete"), "rules delete needs the rule's ID"),
    ],
)
def test_cli__an_action_without_its_name_is_a_usage_error(cli, command, message):
    code, _, err = cli(*command)  # it went to .../None/: 404 "No account named 'None'"
    assert (code, json.loads(err)["error"]["message"]) == (2, message)


def test_cli__accounts_lifecycle(cli):
    code, created, _ = cli(
        "accounts", "create", "orders", "--scopes", "config:read", "--metadata", "team=shop"
    )
    assert code == 0
    assert created["client_secret"] and created["metadata"] == {"team": "shop"}
    code, listed, _ = cli("accounts", "list")
    assert "orders" in {account["name"] for account in listed}
    code, rotated, _ = cli("accounts", "rotate", "orders")
    assert rotated["client_secret"] != created["client_secret"]
    code, disabled, _ = cli("accounts", "disable", "orders")
    assert disabled["is_active"] is False


def test_cli__accounts_create_without_scopes__creates_an_account_holding_none(cli):
    code, created, _ = cli("accounts", "create", "idle")
    assert code == 0
    assert created["scopes"] == []


def test_cli__rules_and_check(cli):
    cli("accounts", "create", "reporter", "--scopes", "config:read")
    assert cli("roles", "create", "reports")[0] == 0
    code, rule, _ = cli(
        "rules", "create", "--role", "reports", "--resource", "config:reports/*", "--action", "read"
    )
    assert code == 0 and rule["resource"] == "config:reports/*"
    assert cli("bind", "reports", "reporter")[0] == 0
    code, decision, _ = cli("check", "config:reports/x", "read", "--subject", "service:reporter")
    assert (code, decision["allowed"]) == (0, True)
    code, decision, _ = cli("check", "config:other/x", "read", "--subject", "service:reporter")
    assert (code, decision["allowed"]) == (1, False)


def test_cli__token_and_whoami(cli, monkeypatch):
    code, token, _ = cli("token")
    assert code == 0 and token.count(".") == 2
    code, me, _ = cli("whoami")
    assert me["scopes"] == ["admin"]
    # --json is JSON on a terminal too (it was the default table there, the token cut in its cell)
    monkeypatch.setattr("platform_client.cli._extras.sys.stdout.isatty", lambda: True)
    code, answer, _ = cli("token", "--json")
    assert code == 0 and answer["access_token"].count(".") == 2


def test_cli__api_error__prints_it_and_exits_1(cli):
    code, _, err = cli("rules", "create", "--role", "nope", "--resource", "config:[x]", "--action", "read")
    assert code == 1
    assert json.loads(err)["error"]["status"] in (400, 404)


def test_cli__an_answer_to_retry_later__prints_when(cli, monkeypatch):
    from auth_app.api.whoami import WhoAmIView
    from platformsite.api.errors import Unavailable

    def down(view, request):
        raise Unavailable("Down for now.", retry_after=7)

    monkeypatch.setattr(WhoAmIView, "get", down)
    code, _, err = cli("whoami")
    assert code == 1
    error = json.loads(err)["error"]
    assert (error["status"], error["code"], error["retry_after"]) == (503, "unavailable", 7)


def test_cli__without_credentials__prints_a_json_error_and_exits_2(cli, monkeypatch):
    monkeypatch.delenv("PLATFORM_CLIENT_ID")
    code, _, err = cli("whoami")
    assert code == 2
    error = json.loads(err)["error"]
    assert error["code"] == "missing_credentials"
    assert "client_id and client_secret are required" in error["message"]


def test_cli__connection_options_before_the_service_name__are_used(
    live_server, service_account, monkeypatch, capsys
):
    client_id, secret = service_account("admin")
    for name in ("PLATFORM_URL", "PLATFORM_CLIENT_ID", "PLATFORM_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    options = ["--url", live_server.url, "--client-id", client_id, "--client-secret", secret]
    assert main([*options, "auth", "whoami"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == ["admin"]


def test_cli__connection_options_after_the_service_name__are_used(
    live_server, service_account, monkeypatch, capsys
):
    client_id, secret = service_account("admin")
    for name in ("PLATFORM_URL", "PLATFORM_CLIENT_ID", "PLATFORM_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    options = ["--url", live_server.url, "--client-id", client_id, "--client-secret", secret]
    assert main(["auth", *options, "whoami"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == ["admin"]


def test_cli__scope_before_the_service_name__narrows_the_token(cli_as, capsys):
    cli_as("auth", "auth:read", "auth:write")
    assert main(["--scope", "auth:read", "auth", "whoami"]) == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == ["auth:read"]


@pytest.mark.parametrize("argv", [["auth", "whoami"], ["--client-id", "a", "login"]])
def test_cli__an_address_that_is_not_http__is_invalid_input(monkeypatch, capsys, argv):
    monkeypatch.setenv("PLATFORM_URL", "localhost:8000")
    monkeypatch.setenv("PLATFORM_CLIENT_SECRET", "s")
    assert main(argv) == 2  # EXIT_USAGE
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "invalid_input" and "'localhost:8000'" in error["message"]


def test_cli__url_option__wins_over_platform_url(cli, monkeypatch, live_server, capsys):
    monkeypatch.setenv("PLATFORM_URL", "http://127.0.0.1:9")
    assert main(["--url", live_server.url, "auth", "whoami"]) == 0
    assert main(["auth", "--url", live_server.url, "whoami"]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["auth"],  # no command
        ["auth", "accounts", "explode"],  # not a choice
        ["nonsense"],  # no such service
        ["--no-such-option", "auth", "whoami"],
        ["events", "get", "not-a-number"],
    ],
)
def test_cli__arguments_refused__print_a_json_usage_error_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "usage"
    assert error["message"] and error["details"]["usage"].startswith("usage: platform")


def test_cli__bad_metadata_pair__prints_a_json_usage_error_and_exits_2(cli):
    code, _, err = cli("accounts", "create", "orders", "--metadata", "no-equals-sign")
    assert code == 2
    assert json.loads(err)["error"]["code"] == "usage"


def test_cli__config_set_without_a_value__prints_a_json_usage_error_and_exits_2(cli_as):
    run = cli_as("config", "config:read", "config:write")
    code, _, err = run("set", "payments", "limits/max")
    assert code == 2
    assert json.loads(err)["error"] == {
        "code": "usage",
        "message": "config set needs NAMESPACE PATH VALUE (or --file)",
    }


def test_cli__file_that_is_not_json__prints_a_json_error_and_exits_2(cli_as, tmp_path):
    bad = tmp_path / "layer.json"
    bad.write_text("{not json")
    run = cli_as("config", "config:read", "config:write")
    code, _, err = run("set", "payments", "--file", str(bad))
    assert code == 2
    assert json.loads(err)["error"]["code"] == "invalid_input"


def test_cli__interrupted__exits_130(cli, monkeypatch):
    import platform_client.cli.auth as auth_commands

    def interrupted(session, options):
        raise KeyboardInterrupt

    monkeypatch.setattr(auth_commands, "auth_whoami", interrupted)
    code, _, _ = cli("whoami")
    assert code == 130


def test_cli__platform_unreachable__prints_a_json_error_and_exits_1(cli, monkeypatch):
    monkeypatch.setenv("PLATFORM_URL", "http://127.0.0.1:9")
    code, _, err = cli("whoami")
    assert code == 1
    assert json.loads(err)["error"]["code"] == "unreachable"


def test_cli__missing_file__prints_a_json_error_and_exits_1(cli_as, tmp_path):
    run = cli_as("config", "config:read", "config:write")
    code, _, err = run("set", "payments", "--file", str(tmp_path / "missing.json"))
    assert code == 1
    assert json.loads(err)["error"]["code"] == "os_error"


def test_server_cli__version_names_the_server_and_the_sdk(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])

    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == "micro-platform 0.1.0 (micro-platform-client 0.1.0)"
