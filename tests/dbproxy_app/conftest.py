"""Fixtures of the db tests: callers with db scopes, and a database on each backend.

``backend`` runs a test once per backend: ``platform`` (the platform's own database: SQLite,
or PostgreSQL when ``DATABASE_URL`` says so), ``sqlite`` (a file) and ``postgresql`` (an external
PostgreSQL: a database ``dbproxy_external`` on ``DATABASE_URL``'s server, skipped without it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest

#: The external PostgreSQL's database (created on DATABASE_URL's server when missing).
EXTERNAL_DATABASE = "dbproxy_external"


def external_dsn() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return url.rsplit("/", 1)[0] + "/" + EXTERNAL_DATABASE


@pytest.fixture(scope="session")
def external_postgres() -> str:
    dsn = external_dsn()
    if dsn is None:
        pytest.skip("the postgresql backend needs a PostgreSQL server (DATABASE_URL)")
    import psycopg

    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [EXTERNAL_DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{EXTERNAL_DATABASE}"')
    return dsn


BACKENDS = [
    "platform",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def manager(api_client):
    return api_client("db:read", "db:write", "db:manage")


@pytest.fixture
def writer(api_client):
    return api_client("db:read", "db:write")


@pytest.fixture
def reader(api_client):
    return api_client("db:read")


@pytest.fixture
def make_database(manager, request, tmp_path, settings) -> Callable[..., str]:
    """Register a database on ``backend`` through the API; returns its (unique) name."""
    settings.DB_SQLITE_DIR = str(tmp_path / "sqlite")
    made: list[tuple[str, str]] = []

    def make(backend: str = "platform", **fields: Any) -> str:
        name = fields.pop("name", None) or f"t{uuid.uuid4().hex[:12]}"
        body = {"name": name, "backend": backend, **fields}
        if backend == "postgresql" and "dsn" not in fields:
            body["dsn"] = request.getfixturevalue("external_postgres")
        response = manager.post("/api/v1/db/databases/", body, format="json")
        assert response.status_code == 201, response.content
        made.append((backend, name))
        return name

    yield make
    for kind, name in made:
        if kind == "postgresql":
            import psycopg

            with psycopg.connect(external_dsn(), autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def database(backend, make_database, transactional_db) -> str:
    """A database on the test's backend."""
    return make_database(backend)


@pytest.fixture
def client_for(client):
    """``client_for("alice", "db:read", roles=["tenant"])``: an API client of a new service account
    holding ``scopes`` and bound to ``roles`` (created when missing)."""
    from rest_framework.test import APIClient

    from auth_app.models import Role
    from auth_app.services import binding_create, role_create, service_account_create
    from tests.conftest import basic_auth

    def make(name: str, *scopes: str, roles: tuple[str, ...] = ()) -> APIClient:
        account, secret = service_account_create(name=name, scopes=list(scopes))
        for role in roles:
            found = Role.objects.filter(name=role).first() or role_create(name=role)
            binding_create(role=found, account=account)
        response = client.post(
            "/o/token/",
            {"grant_type": "client_credentials", "scope": " ".join(scopes)},
            HTTP_AUTHORIZATION=basic_auth(account.application.client_id, secret),
        )
        assert response.status_code == 200, response.content
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access_token']}")
        return api

    return make


@pytest.fixture
def rule():
    """``rule("orders-team", "db:orders/*", "*")``: an allow rule on a role (created when missing)."""
    from auth_app.models import Role
    from auth_app.services import role_create, rule_create

    def make(role: str, resource: str, action: str = "*", effect: str = "allow") -> None:
        found = Role.objects.filter(name=role).first() or role_create(name=role)
        rule_create(role=found, resource=resource, action=action, effect=effect)

    return make
