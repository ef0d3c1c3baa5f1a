"""The platform's own PostgreSQL connections (``platformsite.db.postgresql``)."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest
from django.db import OperationalError, connection
from django.db.utils import ConnectionHandler

from platformsite.api.errors import outage
from platformsite.db import Breaker, DatabaseDown, reachable
from platformsite.db.postgresql import base as engine
from tests.postgres import end_other_connections

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL=postgres://..."
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@needs_postgres
def test_pooled_connections_the_server_ended__are_replaced_not_an_error():
    # Given a pool holding idle connections
    assert connection.pool is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()  # back to the pool

    # When the server ends them (a restart, a failover, an operator's pg_terminate_backend)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        assert end_other_connections(admin) >= 1

    # Then the next queries run on new connections
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        connection.close()


@pytest.fixture
def unreachable_database(settings, monkeypatch):
    """The platform's engine, pooled, for a database nothing listens for; and the probes made."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.PLATFORM_DB_DOWN_SECONDS = 60
    probes = []
    monkeypatch.setattr(engine, "reachable", lambda **params: probes.append(1) or reachable(**params))
    database = {
        "ENGINE": "platformsite.db.postgresql",
        "NAME": "platform",
        "USER": "platform",
        "HOST": "127.0.0.1",
        "PORT": port,
        "OPTIONS": {"pool": {"min_size": 0, "max_size": 2, "timeout": 0.3}},
    }
    down = engine.DatabaseWrapper(
        ConnectionHandler().configure_settings({"default": database})["default"], "down"
    )
    yield down, probes
    down.close_pool()
    engine._breakers.pop("down", None)


@pytest.mark.django_db
def test_a_database_found_down__is_refused_at_once_until_it_may_be_tried_again(unreachable_database):
    down, probes = unreachable_database

    # The first request waits the pool's timeout, then the database is found unreachable
    started = time.monotonic()
    with pytest.raises(OperationalError):
        down.ensure_connection()
    assert time.monotonic() - started >= 0.3 and len(probes) == 1

    # The next ones are refused at once, with when to come back, and probe nothing
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            down.ensure_connection()
        assert time.monotonic() - started < 0.1
        assert isinstance(refused.value.__cause__, DatabaseDown)
        answer = outage(refused.value)
        assert answer.status == 503 and 55 <= answer.retry_after <= 60
    assert len(probes) == 1

    # Once PLATFORM_DB_DOWN_SECONDS have passed, a request waits for it again
    engine._breakers["down"].down_until = 0.0
    with pytest.raises(OperationalError) as waited:
        down.ensure_connection()
    assert not isinstance(waited.value.__cause__, DatabaseDown) and len(probes) == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@needs_postgres
def test_a_database_found_down__is_served_again_as_soon_as_the_pool_reconnected():
    # Given a pool that holds a connection (its background reconnection opened it)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    assert connection.pool.get_stats()["pool_available"] >= 1
    # and a breaker that found the database down moments ago
    breaker = engine._breakers["default"]
    breaker.down_until = time.monotonic() + 60

    # Then the next request is served, and ends the outage
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    connection.close()
    assert breaker.down_until == 0.0


@pytest.mark.postgres
@needs_postgres
def test_a_pool_whose_connections_are_all_in_use__is_not_taken_for_down():
    from psycopg_pool import ConnectionPool, PoolTimeout

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    breaker = Breaker(60)
    with ConnectionPool(kwargs=params, min_size=1, max_size=1, timeout=0.2) as pool:
        held = breaker.getconn(pool, pool.getconn, lambda: reachable(**params))
        with pytest.raises(PoolTimeout):
            breaker.getconn(pool, pool.getconn, lambda: reachable(**params))
        assert breaker.down_until == 0.0
        pool.putconn(held)
