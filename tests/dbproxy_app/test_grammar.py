"""The query grammar and row-policy conditions: strict, and never anything but a 400 on odd input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbproxy_app.query.ast import Cond, Field, Group
from dbproxy_app.query.conditions import compile_condition
from dbproxy_app.query.grammar import decode_cursor, encode_cursor, parse_order, parse_query
from platformsite.api.errors import Invalid


def parse(**params: str):
    return parse_query(
        [(k.replace("__", "."), [v]) for k, v in params.items()], default_limit=10, max_limit=50
    )


def test_filters__are_typed_by_their_field():
    query = parse(**{"meta.env": "eq.prod", "created": "gt.2024-05-01T12:00:00Z", "version": "gte.3"})
    env, created, version = query.where.items
    assert env == Cond(Field("meta", key="env"), "eq", "prod")
    assert created.value == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert version.value == 3
    assert parse(**{"data->a->b": "eq.5"}).where.items[0].value == 5
    assert parse(**{"data->a->>b": "eq.5"}).where.items[0].value == "5"


def test_logic_trees__nest_negate_and_quote():
    (tree,) = parse(**{"or": '(meta.k.eq."a,b)",and(id.not.in.(x,"y)"),version.is.null))'}).where.items
    assert tree.kind == "or"
    first, nested = tree.items
    assert first.value == "a,b)"
    assert nested.kind == "and" and nested.items[0] == Cond(Field("id"), "in", ["x", "y)"], negate=True)
    (negated,) = parse(**{"not.and": "(meta.a.eq.1,meta.b.eq.2)"}).where.items
    assert negated.negate and negated.kind == "and"


def test_limit__is_capped():
    assert parse(limit="5000").limit == 50


def test_cursor__round_trips_and_belongs_to_its_order():
    order = parse_order("created.asc")
    at = datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    assert decode_cursor(encode_cursor(order, at, "r1"), order) == (at, "r1")
    with pytest.raises(Invalid):
        decode_cursor(encode_cursor(order, at, "r1"), parse_order("updated.desc"))


@given(st.text(max_size=60), st.text(max_size=60))
def test_any_parameter_and_value__parse_or_are_invalid_query(name, value):
    try:
        parse_query([(name, [value])], default_limit=10, max_limit=50)
    except Invalid as exc:
        assert exc.code == "invalid_query" and set(exc.details) == {"parameter", "term"}


ALPHABET = st.sampled_from(
    [*'metaidvrsonclg.,()"\\*-> =:0123456789_qxn', "eq.", "in.(", "not.", "and(", "or("]
)


@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_any_logic_tree__parses_or_is_invalid_query(text):
    try:
        parse_query([("or", [text])], default_limit=10, max_limit=50)
    except Invalid as exc:
        assert exc.code == "invalid_query"


def test_deep_trees_and_many_terms__are_refused():
    deep = "(" + "and(" * 20 + "id.eq.a" + ")" * 20 + ")"
    with pytest.raises(Invalid):
        parse(**{"or": deep})
    wide = "(" + ",".join(["id.eq.a"] * 101) + ")"
    with pytest.raises(Invalid):
        parse(**{"or": wide})


def test_conditions__compile_with_the_token_claims_filled_in():
    tree = compile_condition("metadata.owner == $token.sub and not (data.total > 10)", {"sub": "service:a"})
    owner, negated = tree.items
    assert owner == Cond(Field("meta", key="owner"), "eq", "service:a")
    assert negated == Group("and", (Cond(Field("data", path=("total",), text=False), "gt", 10),), negate=True)
    assert compile_condition("'x' == id", {}).items[0] == Cond(Field("id"), "eq", "x")
    assert compile_condition("metadata.k != null", {}).items[0] == Cond(
        Field("meta", key="k"), "is", None, True
    )


@given(st.text(max_size=80))
def test_any_condition__compiles_or_is_invalid_condition(text):
    try:
        compile_condition(text, {"sub": "s"})
    except Invalid as exc:
        assert exc.code == "invalid_condition"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("meta.env", "like.a\x00*"),
        ("meta.env", "ilike.\ud800"),
        ("data->a", 'eq."\\u0000"'),
        ("data->a", 'eq."\\ud800"'),
        ("data->a", 'in.("\\u0000")'),
        ("data->>a", "like.\x00"),
        ("id", "like.\x00"),
    ],
)
def test_values_no_database_can_compare__are_invalid_query(name, value):
    with pytest.raises(Invalid) as raised:
        parse_query([(name, [value])], default_limit=10, max_limit=50)
    assert raised.value.code == "invalid_query"


@pytest.mark.parametrize(
    "condition", ["metadata.k == '\x00'", "metadata.k == '\ud800'", "data.a == 'x\ud800'"]
)
def test_condition_literals_no_database_can_compare__are_invalid_condition(condition):
    with pytest.raises(Invalid) as raised:
        compile_condition(condition, {})
    assert raised.value.code == "invalid_condition"


@pytest.mark.parametrize(
    "value",
    [
        "eq.99999999999999999999999",
        "gt.-9223372036854775809",
        "in.(1,99999999999999999999999)",
        "gt.1e999",
        "lt.NaN",
    ],
)
def test_numbers_no_backend_can_bind__are_invalid_query(value):
    # an integer beyond 64 bits was an OverflowError (500) on SQLite; an infinite float matched nothing
    with pytest.raises(Invalid) as refused:
        parse(**{"data->total": value})
    assert refused.value.code == "invalid_query"
    assert parse(**{"data->total": "eq.9223372036854775807"}).where.items[0].value == 2**63 - 1


def test_conditions__an_integer_beyond_64_bits_is_invalid_condition():
    # stored in a row policy, it made every query of the role's callers a 500
    with pytest.raises(Invalid) as refused:
        compile_condition("data.x == 99999999999999999999999", {})
    assert refused.value.code == "invalid_condition"


@pytest.mark.parametrize(
    "value", ["gt.9999-12-31T23:59:59-01:00", "lt.0001-01-01T00:00:00+01:00", "eq.0001-01-01T00:00:00+23:59"]
)
def test_instants_outside_years_1_to_9999_in_utc__are_invalid_query(value):
    # the offset carried them out of range when the backend made them UTC: an OverflowError (500)
    with pytest.raises(Invalid) as refused:
        parse(created=value)
    assert refused.value.code == "invalid_query"
    same_instant = parse(created="gt.2024-05-01T13:00:00+01:00").where.items[0].value
    assert same_instant == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_conditions__an_instant_outside_years_1_to_9999_in_utc_is_invalid_condition():
    with pytest.raises(Invalid) as refused:
        compile_condition("created > '9999-12-31T23:59:59-01:00'", {})
    # stored in a row policy, it made every query of the role's callers a 500
    assert refused.value.code == "invalid_condition"
