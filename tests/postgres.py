"""PostgreSQL helpers shared by the tests that need a real server."""

from __future__ import annotations

import time

import psycopg

#: The other client connections to the database ``conn`` is on: the pools under test.
_OTHERS = (
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND backend_type = 'client backend'"
)


def end_other_connections(conn: psycopg.Connection) -> int:
    """End every other client connection to ``conn``'s database, as a restart, a failover or an
    operator's ``pg_terminate_backend`` does, and wait until each has closed its socket; returns
    how many there were."""
    ended = conn.execute("SELECT count(pg_terminate_backend(pid)) " + _OTHERS).fetchone()[0]
    for _ in range(100):
        if not conn.execute("SELECT count(*) " + _OTHERS).fetchone()[0]:
            break
        time.sleep(0.05)
    return ended


def end_backend(pid: int, *args, **kwargs) -> None:
    """End the server's session ``pid`` (``psycopg.connect``'s arguments): a query a test abandoned
    goes on in the server until it notices, and would keep the test database from being dropped."""
    with psycopg.connect(*args, autocommit=True, **kwargs) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
