"""One query suite for every backend: each answer is held against the Python evaluator.

The same records are stored on each backend (the platform's own database, an SQLite file, an
external PostgreSQL); every query (written ones, and hypothesis's, over every operator, field
and negation) must select exactly the records the evaluator selects, in order, page by page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbproxy_app import catalog, selectors
from dbproxy_app.backends import Row
from dbproxy_app.query.ast import Cond, Field, Group, Order, Query
from dbproxy_app.query.evaluate import matches
from dbproxy_app.query.grammar import parse_query
from dbproxy_app.records import NO_RULES
from tests.dbproxy_app import dataset

TABLE = "items"


@pytest.fixture
def stored(database, writer):
    response = writer.post(
        f"/api/v1/db/{database}/{TABLE}/bulk/", {"create": dataset.records()}, format="json"
    )
    assert response.status_code == 200, response.content
    entry = catalog.entry(database)
    with entry.backend.session(write=False) as session:
        rows = session.query(entry.table(TABLE), Query(limit=1000))
    return database, rows


def run(database: str, query: Query) -> list[Row]:
    entry = catalog.entry(database)
    return selectors.records_query(entry, TABLE, query, NO_RULES).rows


def expected(rows: list[Row], query: Query) -> list[str]:
    chosen = [row for row in rows if matches(query.where, row.fields())]
    chosen.sort(key=lambda row: (getattr(row, query.order.field), row.id), reverse=query.order.descending)
    return [row.id for row in chosen]


def check(stored, params: dict[str, str]) -> list[str]:
    database, rows = stored
    query = parse_query([(k, [v]) for k, v in params.items()], default_limit=1000, max_limit=1000)
    got = [row.id for row in run(database, query)]
    assert got == expected(rows, query), params
    return got


WRITTEN = [
    {"meta.env": "eq.prod"},
    {"meta.env": "eq.50%_off"},
    {"meta.env": "like.50%*"},
    {"meta.env": "like.*_*"},
    {"meta.env": "like.a_b"},
    {"meta.env": "like.x*y"},
    {"meta.env": "like.back\\slash"},
    {"meta.env": "ilike.PROD"},
    {"meta.env": "neq.prod"},
    {"meta.env": 'in.(prod,dev,"50%_off")'},
    {"meta.env": "not.in.(prod,dev)"},
    {"meta.region": "is.null"},
    {"meta.region": "not.is.null"},
    {"meta.env": "gt.d"},
    {"meta.env": "lte.dev"},
    {"data->total": "gt.5"},
    {"data->total": "lte.5"},
    {"data->>total": "eq.5"},
    {"data->total": "eq.5"},
    {"data->total": "eq.2.5"},
    {"data->flag": "is.true"},
    {"data->flag": "is.false"},
    {"data->flag": "is.null"},
    {"data->flag": "eq.null"},
    {"data->nested->k": 'eq."v1"'},
    {"data->nested": 'eq.{"n":3,"k":"v2"}'},  # an object is equal whatever its keys' order
    {"data->nested": 'neq.{"n":3,"k":"v2"}'},
    {"data->nested->>k": "eq.v2"},
    {"data->nested->n": "in.(1,2,3,30)"},
    {"data->>name": "like.*a*"},
    {"data->>name": "ilike.alpha*"},
    {"data->>name": "like.ep[s]*"},
    {"data->>name": "like.ze?ta"},
    {"data->>name": "eq."},
    {"data->>name": "like.line*"},
    {"id": "like.r1*"},
    {"id": "in.(r01,r02,zz)"},
    {"version": "eq.1"},
    {"or": "(meta.env.eq.prod,data->total.gt.20)"},
    {"or": "(meta.env.eq.dev,and(meta.region.eq.eu,data->flag.not.is.true))"},
    {"not.or": "(meta.env.eq.prod,meta.env.eq.dev)"},
    {"and": "(meta.env.like.*a*,data->>name.neq.alpha)"},
    {"or": '(meta.env.in.("a_b","x*y"),id.eq.r05)'},
    {"meta.env": "eq.prod", "order": "id.asc"},
    {"order": "created.asc"},
    {"order": "version.desc"},
]


@pytest.mark.parametrize("params", WRITTEN, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_written_queries__select_what_the_evaluator_selects(stored, params):
    check(stored, params)


def test_metadata_equality__matches_the_value_exactly_not_a_pattern(stored):
    # the original searched metadata LIKE '%"k":"v"%' with wildcards unescaped: 50%_off matched anything
    got = check(stored, {"meta.env": "eq.50%_off"})
    _, rows = stored
    assert got and all(next(r for r in rows if r.id == i).metadata["env"] == "50%_off" for i in got)
    assert check(stored, {"meta.env": "eq.%"}) == []
    assert check(stored, {"meta.env": "eq.pro_"}) == []


def test_an_empty_in_list__is_false_for_every_record_as_in_postgresql(stored):
    # PostgreSQL's x = ANY('{}') is false even for a null x: not.in.() is every record, one
    # without the key included (the exception to "a missing key is unknown")
    _, rows = stored
    assert check(stored, {"meta.region": "in.()"}) == []
    everything = check(stored, {"meta.region": "not.in.()"})
    assert len(everything) == len(rows) and any("region" not in r.metadata for r in rows)


def test_keyset_pages__walk_every_match_once_in_order(stored):
    database, rows = stored
    for order in ("updated.desc", "created.asc", "id.desc", "version.asc"):
        query = parse_query([("order", [order]), ("limit", ["7"])], default_limit=7, max_limit=1000)
        entry = catalog.entry(database)
        seen: list[str] = []
        while True:
            page = selectors.records_query(entry, TABLE, query, NO_RULES)
            seen += [row.id for row in page.rows]
            if page.next_cursor is None:
                break
            query = parse_query(
                [("order", [order]), ("limit", ["7"]), ("cursor", [page.next_cursor])],
                default_limit=7,
                max_limit=1000,
            )
        assert seen == expected(rows, query), order


def test_counts__exact_planned_and_estimated(stored):
    database, _ = stored
    entry = catalog.entry(database)
    query = parse_query([("meta.env", ["eq.prod"]), ("limit", ["1"])], default_limit=1, max_limit=10)
    exact = selectors.records_query(entry, TABLE, query, NO_RULES, "exact")
    assert exact.total == 4 and len(exact.rows) == 1
    for mode in ("planned", "estimated"):
        assert selectors.records_query(entry, TABLE, query, NO_RULES, mode).total >= 0


# --- generated queries -----------------------------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from("abdeprovlt%_*\\'\"?[] xyz-P"), max_size=6)
META_VALUES = st.one_of(st.sampled_from([*dataset.ENVS, "eu", "us", "ap", "service:team0"]), TEXT)
META_FIELDS = st.sampled_from([Field("meta", key=k) for k in ("env", "region", "owner", "none")])
NUMBERS = st.one_of(st.sampled_from([0, 5, 10, 25, -3, 100, 2.5, 3]), st.integers(-5, 120))
JSON_VALUES = st.one_of(NUMBERS, st.sampled_from(["5", "v1", "alpha", True, False, None]))


def _like(text_values):
    return st.builds(
        lambda a, b, star: f"{a}*{b}" if star else a + b, text_values, text_values, st.booleans()
    )


@st.composite
def conditions(draw):
    kind = draw(st.sampled_from(["meta", "data_text", "data_json", "id", "version", "created"]))
    negate = draw(st.booleans())
    if kind == "meta":
        field = draw(META_FIELDS)
        op = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"]))
        if op == "is":
            return Cond(field, op, None, negate)
        if op in ("like", "ilike"):
            return Cond(field, op, draw(_like(META_VALUES)), negate)
        if op == "in":
            return Cond(field, op, draw(st.lists(META_VALUES, max_size=3)), negate)
        return Cond(field, op, draw(META_VALUES), negate)
    if kind == "data_text":
        path = draw(
            st.sampled_from([("name",), ("total",), ("flag",), ("nested", "k"), ("nested", "n"), ("x",)])
        )
        field = Field("data", path=path, text=True)
        op = draw(st.sampled_from(["eq", "neq", "like", "ilike", "in", "is", "gt", "lt"]))
        values = st.one_of(st.sampled_from([*dataset.NAMES, "5", "10", "2.5", "true", "v1"]), TEXT)
        if op == "is":
            return Cond(field, op, None, negate)
        if op in ("like", "ilike"):
            return Cond(field, op, draw(_like(values)), negate)
        if op == "in":
            return Cond(field, op, draw(st.lists(values, max_size=3)), negate)
        return Cond(field, op, draw(values), negate)
    if kind == "data_json":
        path = draw(st.sampled_from([("total",), ("flag",), ("nested", "n"), ("nested", "k"), ("nope",)]))
        field = Field("data", path=path, text=False)
        op = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "in", "is"]))
        if op == "is":
            return Cond(field, op, draw(st.sampled_from([None, True, False])), negate)
        if op in ("gt", "gte", "lt", "lte"):
            return Cond(field, op, draw(NUMBERS), negate)
        if op == "in":
            return Cond(field, op, draw(st.lists(JSON_VALUES, max_size=3)), negate)
        return Cond(field, op, draw(JSON_VALUES), negate)
    if kind == "id":
        op = draw(st.sampled_from(["eq", "gt", "lt", "like", "in"]))
        ids = st.sampled_from([f"r{i:02d}" for i in range(0, 45, 3)])
        if op == "like":
            return Cond(Field("id"), op, draw(st.sampled_from(["r1*", "*5", "r*0", "r0?"])), negate)
        if op == "in":
            return Cond(Field("id"), op, draw(st.lists(ids, max_size=3)), negate)
        return Cond(Field("id"), op, draw(ids), negate)
    if kind == "version":
        return Cond(
            Field("version"), draw(st.sampled_from(["eq", "gt", "lte"])), draw(st.integers(0, 2)), negate
        )
    return Cond(Field("created"), draw(st.sampled_from(["gt", "lt", "gte"])), None, negate)  # value set later


def trees():
    return st.recursive(
        conditions(),
        lambda children: st.builds(
            Group, st.sampled_from(["and", "or"]), st.lists(children, max_size=3).map(tuple), st.booleans()
        ),
        max_leaves=6,
    )


def _with_times(node, at):
    if isinstance(node, Cond):
        if node.field.kind == "created":
            return Cond(node.field, node.op, at, node.negate)
        return node
    return Group(node.kind, tuple(_with_times(item, at) for item in node.items), node.negate)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    tree=trees(),
    order=st.sampled_from([Order(), Order("id", False), Order("created", False)]),
    shift=st.integers(-2, 2),
)
def test_generated_queries__select_what_the_evaluator_selects(stored, tree, order, shift):
    database, rows = stored
    at = sorted(row.created for row in rows)[len(rows) // 2] + timedelta(microseconds=shift)
    query = Query(where=Group("and", (_with_times(tree, at),)), order=order, limit=1000)
    assert [row.id for row in run(database, query)] == expected(rows, query)
