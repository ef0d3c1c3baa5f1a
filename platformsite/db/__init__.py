"""What the platform adds to its PostgreSQL connections (:mod:`platformsite.db.postgresql`, the
database engine; the db proxy's pools use :func:`ended_by_server` too)."""

from __future__ import annotations

import select

import psycopg


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
