"""``platform auth ...``: accounts, roles, rules, bindings, tokens and policy checks."""

from __future__ import annotations

import argparse
from typing import Any

from platform_client.auth import check
from platform_client.cli import add_connection_options, list_all, metadata_pairs, require_name
from platform_client.session import PlatformSession

A = "/api/v1/auth"


def auth_token(s: PlatformSession, o: argparse.Namespace) -> Any:
    token = s.credentials.token(force=True)
    if not o.json:
        return token
    o.output = getattr(o, "output", None) or "json"  # on a terminal too, unless --output says otherwise
    return {"access_token": token}


def auth_accounts(s: PlatformSession, o: argparse.Namespace) -> Any:
    require_name(o, "accounts")
    name = o.name
    match o.action:
        case "list":
            return list_all(s, f"{A}/accounts/")
        case "get":
            return s.call("GET", f"{A}/accounts/{name}/")
        case "create":
            body = {
                "name": name,
                "type": o.type,
                "scopes": (o.scopes or "").replace(",", " ").split(),
                "metadata": metadata_pairs(o.metadata),
            }
            return s.call("POST", f"{A}/accounts/", json=body)
        case "update":
            body: dict[str, Any] = {}
            if o.scopes is not None:
                body["scopes"] = o.scopes.replace(",", " ").split()
            if o.metadata:
                body["metadata"] = metadata_pairs(o.metadata)
            return s.call("PATCH", f"{A}/accounts/{name}/", json=body)
        case "rotate":
            return s.call(
                "POST", f"{A}/accounts/{name}/rotate-secret/", json={"revoke_tokens": o.revoke_tokens}
            )
        case "disable" | "enable":
            return s.call("POST", f"{A}/accounts/{name}/{o.action}/")
        case "delete":
            s.call("DELETE", f"{A}/accounts/{name}/")
            return {"deleted": name}
    raise SystemExit(f"unknown action {o.action}")


def auth_roles(s: PlatformSession, o: argparse.Namespace) -> Any:
    require_name(o, "roles")
    match o.action:
        case "list":
            return list_all(s, f"{A}/roles/")
        case "get":
            return s.call("GET", f"{A}/roles/{o.name}/")
        case "create":
            return s.call("POST", f"{A}/roles/", json={"name": o.name, "description": o.description})
        case "delete":
            s.call("DELETE", f"{A}/roles/{o.name}/")
            return {"deleted": o.name}
    raise SystemExit(f"unknown action {o.action}")


def auth_rules(s: PlatformSession, o: argparse.Namespace) -> Any:
    match o.action:
        case "list":
            return list_all(s, f"{A}/rules/", {"role": o.role} if o.role else None)
        case "create":
            if not (o.role and o.resource and o.rule_action):
                raise SystemExit("rules create needs --role, --resource and --action")
            body = {
                "role": o.role,
                "resource": o.resource,
                "action": o.rule_action,
                "effect": "deny" if o.deny else "allow",
                "priority": o.priority,
            }
            return s.call("POST", f"{A}/rules/", json=body)
        case "delete":
            require_name(o, "rules", "id")
            s.call("DELETE", f"{A}/rules/{o.id}/")
            return {"deleted": o.id}
    raise SystemExit(f"unknown action {o.action}")


def auth_bind(s: PlatformSession, o: argparse.Namespace) -> Any:
    return s.call("POST", f"{A}/bindings/", json={"role": o.role, "account": o.account})


def auth_unbind(s: PlatformSession, o: argparse.Namespace) -> Any:
    bindings = list_all(s, f"{A}/bindings/", {"role": o.role, "account": o.account})
    for binding in bindings:
        s.call("DELETE", f"{A}/bindings/{binding['id']}/")
    return {"removed": len(bindings)}


def auth_check(s: PlatformSession, o: argparse.Namespace) -> Any:
    decision = check(s, o.resource, o.check_action, subject=o.subject)
    o.exit_code = 0 if decision["allowed"] else 1
    return decision


def auth_whoami(s: PlatformSession, o: argparse.Namespace) -> Any:
    return s.call("GET", f"{A}/whoami/")


def add_commands(commands: argparse._SubParsersAction) -> None:
    auth = commands.add_parser("auth", help="Accounts, roles, rules, tokens and policy checks.")
    add_connection_options(auth)
    sub = auth.add_subparsers(dest="auth_command", required=True)

    token = sub.add_parser("token", help="Print an access token for the configured service account.")
    token.add_argument(
        "--json", action="store_true", help='{"access_token": ...} in JSON, on a terminal too (or --output)'
    )
    token.set_defaults(handler=auth_token)

    sub.add_parser("whoami", help="Who the configured credentials are.").set_defaults(handler=auth_whoami)

    accounts = sub.add_parser("accounts", help="Service and user accounts.")
    accounts.add_argument(
        "action", choices=["list", "get", "create", "update", "rotate", "disable", "enable", "delete"]
    )
    accounts.add_argument("name", nargs="?")
    accounts.add_argument("--type", choices=["service", "user"], default="service")
    accounts.add_argument("--scopes", help='Space- or comma-separated, e.g. "config:read events:write".')
    accounts.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    accounts.add_argument(
        "--revoke-tokens", action="store_true", help="With rotate: also revoke live tokens."
    )
    accounts.set_defaults(handler=auth_accounts)

    roles = sub.add_parser("roles", help="Roles (sets of rules).")
    roles.add_argument("action", choices=["list", "get", "create", "delete"])
    roles.add_argument("name", nargs="?")
    roles.add_argument("--description", default="")
    roles.set_defaults(handler=auth_roles)

    rules = sub.add_parser("rules", help="Policy rules.")
    rules.add_argument("action", choices=["list", "create", "delete"])
    rules.add_argument("id", nargs="?", type=int)
    rules.add_argument("--role")
    rules.add_argument("--resource", help="'<service>:<glob>', e.g. config:payments/*")
    rules.add_argument("--action", dest="rule_action", choices=["read", "write", "*"])
    rules.add_argument("--deny", action="store_true")
    rules.add_argument("--priority", type=int, default=0)
    rules.set_defaults(handler=auth_rules)

    bind = sub.add_parser("bind", help="Give an account a role.")
    bind.add_argument("role")
    bind.add_argument("account")
    bind.set_defaults(handler=auth_bind)
    unbind = sub.add_parser("unbind", help="Take a role from an account.")
    unbind.add_argument("role")
    unbind.add_argument("account")
    unbind.set_defaults(handler=auth_unbind)

    check_parser = sub.add_parser("check", help="May the caller (or --subject) do ACTION on RESOURCE?")
    check_parser.add_argument("resource")
    check_parser.add_argument("check_action", metavar="action", choices=["read", "write"])
    check_parser.add_argument("--subject")
    check_parser.set_defaults(handler=auth_check)
