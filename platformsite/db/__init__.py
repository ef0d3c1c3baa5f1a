"""What the platform adds to its PostgreSQL connections (:mod:`platformsite.db.postgresql`, the
database engine, and the db proxy's pools both take their connections through these)."""

from __future__ import annotations

import math
import select
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout


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


def reachable(*args: Any, **kwargs: Any) -> bool:
    """Whether a connection of its own (``psycopg.connect``'s arguments) can be opened: a
    :class:`Breaker`'s probe."""
    try:
        psycopg.connect(*args, **kwargs).close()
    except psycopg.Error:
        return False
    return True


class DatabaseDown(psycopg.OperationalError):
    """The database was found unreachable moments ago: answered at once, not waited for."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the database could not be reached just now; retry in {retry_after} s")
        self.retry_after = retry_after


class Breaker:
    """Whether a pool's database is down, so that requests for it fail at once rather than each
    holding a worker thread for the pool's whole timeout.

    A request that waited the whole timeout for a connection asks ``reachable`` (one connection
    of its own) whether the database is down or only busy.  Found down, it is not waited for
    again for ``down_seconds``: a request is given a connection only when the pool already holds
    one (its background reconnection opens one as soon as the database is back, which ends the
    outage then and there), and is refused with :class:`DatabaseDown` otherwise."""

    def __init__(self, down_seconds: float) -> None:
        self.down_seconds = down_seconds
        self.down_until = 0.0

    def getconn(
        self, pool: ConnectionPool, take: Callable[[], psycopg.Connection], reachable: Callable[[], bool]
    ) -> psycopg.Connection:
        """A live connection ``take`` got from ``pool``: see the class."""
        left = self.down_until - time.monotonic()
        if left > 0 and not pool.get_stats().get("pool_available"):
            raise DatabaseDown(math.ceil(left))
        try:
            conn = replace_ended(take(), pool, take)
        except PoolTimeout:
            # For a database that is down, or one whose connections are all in use?  Other
            # waiters may have told already.
            if self.down_until < time.monotonic() and not reachable():
                self.down_until = time.monotonic() + self.down_seconds
            raise
        if left > 0:
            self.down_until = 0.0  # it is back
        return conn
