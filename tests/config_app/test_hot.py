"""The hot path of resolved reads (config_app.hot): the full view's answer, from the process cache."""

from __future__ import annotations

import pytest

from config_app import hot
from tests.config_app.conftest import base
from tests.hotpath import Driver

pytestmark = pytest.mark.django_db


@pytest.fixture
def driver() -> Driver:
    return Driver(hot.ROUTES)


@pytest.fixture
def payments(make_namespace, put_layer):
    make_namespace("payments", secret_paths=["db/password"])
    put_layer("global", "production", {"region": "eu"})
    put_layer("payments", "default", {"db": {"host": "h", "password": "hunter2"}})
    put_layer("payments", "production", {"db": {"host": "db.prod"}})


@pytest.mark.parametrize("query", ["", "?env=default", "?env=production", "?env=staging"])
def test_resolve__hot_answer_is_the_full_views(driver, issue_token, payments, query):
    token = issue_token("config:read")

    first, second = driver.warm("GET", base("payments") + "resolve" + query, token)

    assert (first.hot, second.hot) == (False, True)
    assert second.comparable() == first.comparable()
    assert second.json()["data"]["db"]["password"] == "***"


def test_resolve__caller_holding_config_secrets__served_by_the_full_view(driver, issue_token, payments):
    token = issue_token("config:read", "config:secrets")

    first, second = driver.warm("GET", base("payments") + "resolve", token)

    assert (first.hot, second.hot) == (False, False)
    assert second.json()["data"]["db"]["password"] == "hunter2"


def test_resolve__write__next_hot_read_has_it(driver, issue_token, payments, put_layer):
    token = issue_token("config:read")
    path = base("payments") + "resolve?env=production"
    driver.warm("GET", path, token)

    put_layer("payments", "production", {"db": {"host": "db2.prod"}})
    replies = [driver.get(path, token) for _ in range(2)]

    assert [reply.json()["data"]["db"]["host"] for reply in replies] == ["db2.prod", "db2.prod"]
    assert replies[1].hot


def test_resolve__unknown_namespace__404_from_the_full_view(driver, issue_token, payments):
    token = issue_token("config:read")

    first, second = driver.warm("GET", base("nowhere") + "resolve", token)

    assert (first.hot, second.hot) == (False, False)
    assert second.status == 404


def test_resolve__weak_if_none_match__hot_304_like_the_full_view(driver, issue_token, payments):
    token = issue_token("config:read")
    path = base("payments") + "resolve"
    etag = driver.get(path, token).headers["ETag"]

    first, second = driver.warm("GET", path, token, headers={"If-None-Match": f'W/"x", W/{etag}'})

    assert second.hot
    assert (first.status, second.status) == (304, 304)


def test_resolve__if_none_match_star__hot_304_like_the_full_view(driver, issue_token, payments):
    token = issue_token("config:read")
    path = base("payments") + "resolve"
    etag = driver.get(path, token).headers["ETag"]

    reply = driver.get(path, token, headers={"If-None-Match": "*"})

    assert reply.hot and (reply.status, reply.headers["ETag"]) == (304, etag)
    assert reply.comparable() == Driver([]).get(path, token, headers={"If-None-Match": "*"}).comparable()
