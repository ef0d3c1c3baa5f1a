"""``order=`` by ``meta.<key>`` and by a data path on every backend: the value's text in code
point order, missing values placed by ``nullsfirst``/``nullslast`` (by default last ascending,
first descending, as PostgreSQL places them), ties broken by id, keyset pages walking every
record once; order terms built to inject SQL are 400; an expression index serves the order."""

from __future__ import annotations

import pytest

from dbproxy_app.query.grammar import parse_order
from platformsite.api.errors import Invalid
from tests.dbproxy_app.test_records_api import url

VALUES = ["b", "a", "é", "Z", "", "a b", "10", "9", None, "b", None, "a", "O'Brien", "b"]


def value_of(index: int):
    return VALUES[index % len(VALUES)]


@pytest.fixture
def stored(database, writer) -> str:
    records = []
    for i in range(len(VALUES) + 3):
        value = value_of(i)
        record = {"id": f"r{i:02d}", "metadata": {} if value is None else {"k": value}}
        record["data"] = {"a": {"b": value}} if value is not None else ({"a": {}} if i % 2 else {"z": 1})
        if i == 7:
            record["data"] = {"a": {"b": 9}}  # a number orders by its text, "9"
        records.append(record)
    response = writer.post(f"/api/v1/db/{database}/orders/bulk/", {"create": records}, format="json")
    assert response.status_code == 200, response.content
    return database


def expected(descending: bool, nulls_first: bool | None) -> list[str]:
    rows = [(f"r{i:02d}", value_of(i)) for i in range(len(VALUES) + 3)]
    present = sorted([r for r in rows if r[1] is not None], key=lambda r: (r[1], r[0]), reverse=descending)
    missing = sorted([r for r in rows if r[1] is None], key=lambda r: r[0], reverse=descending)
    first = descending if nulls_first is None else nulls_first
    return [r[0] for r in (missing + present if first else present + missing)]


def walk(api, database: str, order: str, limit: int = 3) -> list[str]:
    seen: list[str] = []
    query = f"?order={order}&limit={limit}"
    for _ in range(50):
        response = api.get(url(database) + query)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [item["id"] for item in body["results"]]
        if not body["next"]:
            return seen
        query = "?" + body["next"].split("?", 1)[1]
    raise AssertionError("the pages never ended")


ORDERS = [
    ("", False, None),
    (".asc", False, None),
    (".desc", True, None),
    (".asc.nullsfirst", False, True),
    (".desc.nullslast", True, False),
    (".nullsfirst", False, True),
    (".desc.nullsfirst", True, True),
]


@pytest.mark.parametrize(("suffix", "descending", "nulls_first"), ORDERS)
@pytest.mark.parametrize("field", ["meta.k", "data->a->>b", "data->a->b"])
def test_order__by_a_metadata_key_or_data_path_walks_every_record_once(
    stored, writer, field, suffix, descending, nulls_first
):
    assert walk(writer, stored, field + suffix) == expected(descending, nulls_first)


def test_order__one_page_is_the_walks_first(stored, writer):
    response = writer.get(url(stored) + "?order=meta.k.desc&limit=100")
    assert [item["id"] for item in response.json()["results"]] == expected(True, None)
    assert response.json()["next"] is None


def test_order__combines_with_filters_and_row_counts(stored, writer):
    response = writer.get(url(stored) + "?order=meta.k&meta.k=gte.a&limit=2", HTTP_PREFER="count=exact")
    assert response.status_code == 200
    chosen = [i for i in expected(False, None) if (value_of(int(i[1:])) or "") >= "a"]
    assert [item["id"] for item in response.json()["results"]] == chosen[:2]
    assert response["Content-Range"].endswith(f"/{len(chosen)}")


def test_a_cursor__belongs_to_its_order(stored, writer):
    body = writer.get(url(stored) + "?order=meta.k.desc&limit=2").json()
    cursor = body["next"].split("cursor=", 1)[1]
    for other in ("meta.k.asc", "meta.k.desc.nullslast", "meta.x.desc", "data->k.desc", "id.desc"):
        response = writer.get(url(stored) + f"?order={other}&cursor={cursor}")
        assert response.status_code == 400, other
        assert response.json()["error"]["details"]["parameter"] == "cursor"


INJECTIONS = [
    "meta.k';DROP TABLE x;--",
    'meta.k")--',
    "meta.k.desc;SELECT 1",
    "meta.k COLLATE x",
    "meta.k%s",
    "meta.",
    "meta.k.desc.nullslast.asc",
    "meta.k.nullslast.desc",
    "meta.k.sideways",
    "data->a'b",
    "data->a->>b->c",
    "data->",
    "data->a}",
    "data->a,b",
    "data->a.asc.extra",
    "id.nullsfirst.asc",
    "updated.desc;--",
    "(meta.k)",
]


@pytest.mark.parametrize("order", INJECTIONS)
def test_order__terms_built_to_inject_sql_are_400_naming_the_order(stored, writer, order):
    response = writer.get(url(stored), {"order": order})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_query" and error["details"]["parameter"] == "order"
    assert len(writer.get(url(stored) + "?limit=100").json()["results"]) == len(VALUES) + 3


def test_parse_order__the_grammar():
    order = parse_order("data->a->>b.desc.nullslast")
    assert (order.field, order.descending, order.nulls_first, order.key.path) == (
        "data->a->>b",
        True,
        False,
        ("a", "b"),
    )
    assert parse_order("meta.env").nulls_come_first is False
    assert parse_order("meta.env.desc").nulls_come_first is True
    assert parse_order("version.desc").key is None
    with pytest.raises(Invalid):
        parse_order("meta.env.up")


@pytest.mark.postgres
def test_order__is_served_by_an_expression_index_where_one_exists(make_database, writer, transactional_db):
    from dbproxy_app.catalog import entry
    from dbproxy_app.query.grammar import parse_query

    name = make_database("postgresql")
    records = [{"id": f"r{i}", "metadata": {"k": f"v{i % 7}"}, "data": {"a": {"b": i}}} for i in range(200)]
    assert (
        writer.post(f"/api/v1/db/{name}/orders/bulk/", {"create": records}, format="json").status_code == 200
    )
    found = entry(name)
    table = found.table("orders")
    with found.backend.session() as session:
        target = session.identifier(name, "orders")
        session.execute(
            f"""CREATE INDEX orders_meta_k ON {target} ((("metadata" ->> 'k') COLLATE "C"), id)"""
        )
        session.execute(
            f"""CREATE INDEX orders_data_ab ON {target} ((("data" #>> '{{a,b}}') COLLATE "C"), id)"""
        )
        session.execute("ANALYZE " + target)
        session.execute("SET LOCAL enable_seqscan = off")
        session.execute("SET LOCAL enable_sort = off")
        for order, index in (("meta.k.desc", "orders_meta_k"), ("data->a->>b", "orders_data_ab")):
            query = parse_query([("order", [order]), ("limit", ["5"])], default_limit=5, max_limit=100)
            sql, params = session.query_sql(table, query)
            plan = "\n".join(row[0] for row in session.execute("EXPLAIN " + sql, params)[0])
            assert "Index Scan" in plan and index in plan and "Sort" not in plan, plan
