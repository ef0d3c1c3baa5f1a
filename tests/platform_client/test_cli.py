"""``platform auth ...`` against a live platform."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def cli(cli_as):
    return cli_as("auth", "admin")


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


def test_cli__token_and_whoami(cli):
    code, token, _ = cli("token")
    assert code == 0 and token.count(".") == 2
    code, me, _ = cli("whoami")
    assert me["scopes"] == ["admin"]


def test_cli__api_error__prints_it_and_exits_1(cli):
    code, _, err = cli("rules", "create", "--role", "nope", "--resource", "config:[x]", "--action", "read")
    assert code == 1
    assert json.loads(err)["error"]["status"] in (400, 404)


def test_cli__without_credentials__exits_2(cli, monkeypatch):
    monkeypatch.delenv("PLATFORM_CLIENT_ID")
    code, _, err = cli("whoami")
    assert code == 2
    assert "client_id and client_secret are required" in err


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
