"""The platform's own PostgreSQL connections (``platformsite.db.postgresql``)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL=postgres://..."),
]

#: The other client connections to the test database: the pool's.
POOLED = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


@pytest.mark.django_db(transaction=True)
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
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) " + POOLED).fetchone()[0]
        for _ in range(100):  # each ended backend has written its goodbye and closed its socket
            if not admin.execute("SELECT count(*) " + POOLED).fetchone()[0]:
                break
            time.sleep(0.05)
    assert ended >= 1

    # Then the next queries run on new connections
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        connection.close()
