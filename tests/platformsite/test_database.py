"""The platform's own PostgreSQL connections (``platformsite.db.postgresql``)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from tests.postgres import end_other_connections

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL=postgres://..."),
]


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
        assert end_other_connections(admin) >= 1

    # Then the next queries run on new connections
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        connection.close()
