"""The hot path of a record read by id (dbproxy_app.hot): the full view's answer, or Django."""

from __future__ import annotations

import pytest

from dbproxy_app import hot
from tests.dbproxy_app.test_records_api import create, url
from tests.hotpath import Driver

EXTERNAL = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def token(issue_token) -> str:
    return issue_token("db:read")


@pytest.fixture(params=EXTERNAL)
def stored(request, make_database, writer, transactional_db) -> str:
    name = make_database(request.param)
    create(writer, name, {"id": "a", "metadata": {"env": "prod"}, "data": {"n": [1, "é"]}})
    return name


def test_read__hot_answer_is_the_full_views(driver, token, stored):
    first, second = driver.warm("GET", url(stored, record="a"), token)
    assert (first.hot, second.hot) == (False, True)
    assert second.comparable() == first.comparable()
    assert second.headers["ETag"] == '"1"' and second.json()["data"] == {"n": [1, "é"]}


def test_read__an_update_is_seen_by_the_next_hot_read(driver, token, stored, writer):
    driver.warm("GET", url(stored, record="a"), token)
    writer.put(url(stored, record="a"), {"data": 2}, format="json")
    reply = driver.get(url(stored, record="a"), token)
    assert reply.hot and reply.json()["data"] == 2 and reply.json()["version"] == 2


@pytest.mark.parametrize("suffix", ["?select=id", "?x=1"])
def test_read__parameters_go_to_the_full_view(driver, token, stored, suffix):
    driver.warm("GET", url(stored, record="a"), token)
    assert not driver.get(url(stored, record="a") + suffix, token).hot


def test_read__a_range_header_goes_to_the_full_view_which_refuses_it(driver, token, stored):
    driver.warm("GET", url(stored, record="a"), token)
    reply = driver.get(url(stored, record="a"), token, headers={"Range": "10-19"})
    assert not reply.hot and reply.status == 400


def test_read__a_missing_record_or_table_is_the_full_views_404(driver, token, stored):
    driver.warm("GET", url(stored, record="a"), token)
    for path in (url(stored, record="nope"), url(stored, "other", "a")):
        reply = driver.get(path, token)
        assert not reply.hot and reply.status == 404


def test_read__refusals_are_the_full_views(driver, token, stored, api_client, issue_token):
    driver.warm("GET", url(stored, record="a"), token)
    outsider = issue_token("config:read")
    reply = driver.get(url(stored, record="a"), outsider)
    assert not reply.hot and reply.status == 403


def test_read__a_table_with_row_policies_goes_to_the_full_view(driver, token, stored, manager):
    manager.post(
        f"/api/v1/db/databases/{stored}/policies/",
        {"role": "tenant", "condition": "metadata.owner == $token.sub"},
        format="json",
    )
    _, second = driver.warm("GET", url(stored, record="a"), token)
    assert not second.hot and second.status == 404  # the caller holds no role: no row


def test_read__the_platform_backend_goes_to_the_full_view(
    driver, token, make_database, writer, transactional_db
):
    name = make_database("platform")
    create(writer, name, {"id": "a"})
    _, second = driver.warm("GET", url(name, record="a"), token)
    assert not second.hot and second.status == 200
