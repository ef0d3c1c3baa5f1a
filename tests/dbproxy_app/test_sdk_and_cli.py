"""platform_client.db and ``platform db ...`` against a live platform."""

from __future__ import annotations

import pytest

from platform_client.db import Databases, Record, Table
from platform_client.session import PlatformError, PlatformSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def session(live_server, service_account, settings, tmp_path):
    settings.DB_SQLITE_DIR = str(tmp_path)
    client_id, secret = service_account("db:read", "db:write", "db:manage")
    with PlatformSession(live_server.url, client_id, secret) as session:
        yield session


@pytest.mark.parametrize("backend", ["platform", "sqlite"])
def test_sdk__a_table_round_trip(session, backend):
    Databases(session).create("shop", backend=backend)
    orders = Table("orders", database="shop", session=session)
    made = orders.create({"total": 12}, id="o-1", metadata={"env": "prod"})
    assert isinstance(made, Record) and made.version == 1 and made.data == {"total": 12}
    assert orders.read("o-1") == made
    changed = orders.update("o-1", {"total": 13}, metadata={"env": "prod"}, expected_version=1)
    assert changed.version == 2
    with pytest.raises(PlatformError) as conflict:
        orders.update("o-1", {"total": 14}, expected_version=1)
    assert conflict.value.status == 409 and conflict.value.code == "version_conflict"
    patched = orders.patch("o-1", {"note": "x"})
    assert patched.data == {"total": 13, "note": "x"}
    orders.create(bytes=b"\x00\x01", id="blob")
    assert orders.read("blob").bytes == b"\x00\x01"
    result = orders.bulk(
        create=[{"id": f"b{i}", "metadata": {"env": "dev"}} for i in range(5)], delete=["blob"]
    )
    assert len(result["created"]) == 5 and result["deleted"] == ["blob"]
    assert [r.id for r in orders.query({"meta.env": "eq.prod"})] == ["o-1"]
    assert sorted(r.id for r in orders.query({"meta.env": "eq.dev"}, limit=2)) == [f"b{i}" for i in range(5)]
    page = orders.page({"meta.env": "eq.dev"}, limit=2, count="exact")
    assert page.count == 5 and len(page.records) == 2 and page.next
    (chosen,) = orders.page({"meta.env": "eq.prod"}, select="id,metadata").records
    assert chosen == Record("o-1", metadata={"env": "prod"})  # what select left out is None
    (partial,) = orders.page({"meta.env": "eq.prod"}, select="id,data").records
    assert partial.metadata is None  # not {}: written back, it would empty the stored metadata
    orders.delete("o-1", expected_version=3)
    assert orders.get("o-1") is None
    assert [t["name"] for t in Databases(session).tables("shop")] == ["orders"]


def test_sdk__retries_a_503_then_gives_up(session, monkeypatch):
    calls = []

    def down(method, url, **kwargs):
        calls.append(url)
        raise PlatformError(503, "database_unavailable", "down", {"database": "shop"})

    table = Table("orders", database="shop", session=session, retries=2, backoff=0.001)
    monkeypatch.setattr(session, "call", down)
    with pytest.raises(PlatformError) as raised:
        table.read("x")
    assert raised.value.status == 503 and len(calls) == 3


def test_sdk__a_503_is_not_sent_again_before_its_retry_after(session, monkeypatch):
    answers = [0.3, 0.01, None]
    pauses = []
    monkeypatch.setattr("platform_client.db.time.sleep", pauses.append)

    def down(method, url, **kwargs):
        retry_after = answers.pop(0)
        if retry_after is None:
            return {"id": "x"}
        raise PlatformError(503, "database_unavailable", "down", retry_after=retry_after)

    monkeypatch.setattr(session, "call", down)
    Table("orders", database="shop", session=session, backoff=0.001).call("GET", "/x")
    assert pauses[0] == 0.3 and pauses[1] < 0.3 and not answers


def test_sdk__a_503_whose_retry_after_passes_max_wait__is_raised_at_once(session, monkeypatch):
    calls, pauses = [], []
    monkeypatch.setattr("platform_client.db.time.sleep", pauses.append)

    def down(method, url, **kwargs):
        calls.append(url)
        raise PlatformError(503, "database_unavailable", "down", {"database": "shop"}, retry_after=4)

    monkeypatch.setattr(session, "call", down)
    table = Table("orders", database="shop", session=session, max_wait=5)
    with pytest.raises(PlatformError) as raised:
        table.read("x")
    # one wait of 4 s fits in max_wait, a second would not: the caller learns when to come back
    assert len(calls) == 2 and pauses == [4] and raised.value.retry_after == 4


def test_sdk__a_503_that_clears_is_retried_transparently(session, monkeypatch):
    Databases(session).create("shop")
    table = Table("orders", database="shop", session=session, retries=3, backoff=0.001)
    table.create({"a": 1}, id="x")
    real, failures = session.call, [1, 1]

    def flaky(method, url, **kwargs):
        if failures:
            failures.pop()
            raise PlatformError(503, "database_unavailable", "down", {"database": "shop"})
        return real(method, url, **kwargs)

    monkeypatch.setattr(session, "call", flaky)
    assert table.read("x").data == {"a": 1}


@pytest.fixture
def cli(cli_as):
    return cli_as("db", "db:read", "db:write", "db:manage")


def test_cli__databases_tables_put_get_query_delete(cli, monkeypatch):
    monkeypatch.setenv("SHOP_DSN", "")
    code, made, _ = cli("create-database", "shop")
    assert code == 0 and made["name"] == "shop"
    code, record, _ = cli("put", "shop", "orders", "o-1", "--data", '{"total": 5}', "--metadata", "env=prod")
    assert code == 0 and record["version"] == 1 and record["metadata"] == {"env": "prod"}
    code, record, _ = cli("put", "shop", "orders", "o-1", "--data", '{"total": 6}', "--expected-version", "1")
    assert code == 0 and record["version"] == 2 and record["metadata"] == {}
    code, _, err = cli("put", "shop", "orders", "o-1", "--data", "{}", "--expected-version", "1")
    assert code == 1 and "version_conflict" in err
    code, record, _ = cli("get", "shop", "orders", "o-1")
    assert code == 0 and record["data"] == {"total": 6}
    assert record["updated"].endswith("Z") and record["created"].endswith("Z")  # the API's spelling
    cli("put", "shop", "orders", "o-2", "--metadata", "env=dev")
    code, page, _ = cli("query", "shop", "orders", "meta.env=eq.dev", "--count", "exact")
    assert code == 0 and [r["id"] for r in page["results"]] == ["o-2"] and page["count"] == 1
    code, everything, _ = cli("query", "shop", "orders", "--all", "--order", "id.asc", "--limit", "1")
    assert [r["id"] for r in everything] == ["o-1", "o-2"]
    code, chosen, _ = cli("query", "shop", "orders", "meta.env=eq.dev", "--select", "id,metadata")
    assert (code, chosen["results"]) == (0, [{"id": "o-2", "metadata": {"env": "dev"}}])
    code, chosen, _ = cli("query", "shop", "orders", "--all", "--order", "id.asc", "--select", "data")
    assert (code, chosen) == (0, [{"data": {"total": 6}}, {"data": None}])
    code, _, err = cli("query", "shop", "orders", "meta.env=bogus.x")
    assert code == 1 and "invalid_query" in err
    Table("orders", database="shop", session=PlatformSession()).create(bytes=b"\x00\x01", id="blob")
    code, record, _ = cli("get", "shop", "orders", "blob")
    assert (code, record["bytes"]) == (0, "AAE=")  # as the API answers it, not its length
    code, tables, _ = cli("tables", "shop")
    assert [t["name"] for t in tables] == ["orders"]
    code, databases, _ = cli("databases")
    assert [d["name"] for d in databases] == ["shop"]
    assert cli("delete", "shop", "orders", "o-1")[0] == 0
    code, _, err = cli("get", "shop", "orders", "o-1")
    assert code == 1 and "record_not_found" in err
    code, _, err = cli("create-database", "ext", "--backend", "postgresql", "--dsn-env", "SHOP_DSN")
    assert code == 2 and "invalid_input" in err
    code, _, err = cli("create-database", "opts", "--option", "pool_max")
    assert code == 2 and "--option takes key=value" in err  # the flag given, not --metadata
