"""What the platform adds to its PostgreSQL connections (:mod:`platformsite.db.postgresql`, the
database engine; the db proxy's pools use :func:`replace_ended` too)."""

from __future__ import annotations

import select
from collections.abc import Callable

import psycopg
from psycopg_pool import ConnectionPool


def ended_by_server(conn: psycopg.Connection) -> bool:
    """Whether the server ended this idle connection.  An idle connection (no LISTEN) is sent
    nothing unless the server is ending it (a restart, a failover, ``pg_terminate_backend``, an
    ``idle_session_timeout``), so a socket with something to read means it was: one zero-timeout
    poll, no round trip (psycopg_pool's own ``check`` sends a query on every checkout, and sleeps
    a second after a dead connection)."""
    if conn.closed:
        return True
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def replace_ended(conn: psycopg.Connection, pool: ConnectionPool, take: Callable[[], psycopg.Connection]):
    """``conn``, just taken from ``pool``, or, when the server ended it while it sat idle there
    (after a restart every idle connection is dead), the first live one ``take`` gives instead."""
    for _ in range(pool.max_size):
        if not ended_by_server(conn):
            break
        conn.close()
        pool.putconn(conn)  # the pool drops it and opens another in the background
        conn = take()
    return conn
