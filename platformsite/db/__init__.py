"""What the platform adds to its PostgreSQL connections (:mod:`platformsite.db.postgresql`, the
database engine, and the db proxy's pools both take their connections through these)."""

from __future__ import annotations

import logging
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from platformsite import localstate

logger = logging.getLogger(__name__)


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


def silent(*args: Any, **kwargs: Any) -> bool:
    """Whether the server leaves a connection of its own (``psycopg.connect``'s arguments, with a
    ``connect_timeout``) unanswered: hung, or a network that drops its packets.  A server that
    answers, even with an error (too many clients, starting up), is not silent: a
    :class:`Stalls`' probe."""
    try:
        psycopg.connect(*args, **kwargs).close()
    except psycopg.errors.ConnectionTimeout:
        return True
    except psycopg.Error:
        return False
    return False


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
        self.silent_until = 0.0

    def getconn(
        self, pool: ConnectionPool, take: Callable[[], psycopg.Connection], reachable: Callable[[], bool]
    ) -> psycopg.Connection:
        """A live connection ``take`` got from ``pool``: see the class."""
        now = time.monotonic()
        left = self.down_until - now
        if left > 0 and (self.silent_until > now or not pool.get_stats().get("pool_available")):
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

    def found_silent(self) -> None:
        """The server left a query and a new connection unanswered (:class:`Stalls`): requests
        are refused for ``down_seconds`` even when the pool holds connections, as those wait on
        the same server."""
        self.down_until = self.silent_until = time.monotonic() + self.down_seconds


class Stalls:
    """Connections in use whose server may stop answering in the middle of a query.

    A server that hangs (a stopped process, storage that stalls, a network that drops packets
    without resetting anything) leaves a query waiting for as long as it hangs: the kernel
    acknowledges what is sent, so neither TCP keepalives nor a server-side ``statement_timeout``
    end it.  A background thread looks at the connections :meth:`watch` was told of, every
    ``tick`` seconds, for one that has been in a query ``stall_seconds``; it then asks the
    connection's ``is_silent`` probe (a connection of its own, with a short timeout) whether the
    server answers at all.  A slow query on a server that answers is left alone, and asked about
    again ``stall_seconds`` later.  On a silent server the socket of every connection in a query
    on it (stalled or not yet) is shut down, so the thread waiting on it gets an
    ``OperationalError`` at once (answered ``503``), and its :class:`Breaker` refuses requests
    for its ``down_seconds``."""

    def __init__(self, stall_seconds: float, tick: float = 0.5) -> None:
        self.stall_seconds = stall_seconds
        self.tick = min(tick, stall_seconds)
        self._in_use: dict[int, tuple[psycopg.Connection, Breaker, Callable[[], bool]]] = {}
        self._since: dict[int, float] = {}
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        # The thread never ends, but a forked child does not have it: started again there.
        os.register_at_fork(after_in_child=self._forked)

    def watch(self, conn: psycopg.Connection, breaker: Breaker, is_silent: Callable[[], bool]) -> None:
        """Watch ``conn``, in use from now, until :meth:`forget`; ``is_silent`` asks its server
        whether it answers (:func:`silent`)."""
        if self.stall_seconds <= 0:
            return
        self._in_use[id(conn)] = (conn, breaker, is_silent)
        if self._thread is None:
            self._run_thread()

    def forget(self, conn: psycopg.Connection) -> None:
        self._in_use.pop(id(conn), None)

    def clear(self) -> None:
        self._in_use.clear()
        self._since.clear()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _forked(self) -> None:
        self._thread = None
        self._start = threading.Lock()
        self.clear()

    def _run_thread(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-stalls", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            try:
                self.look()
            except Exception:
                logger.exception("looking for stalled database connections failed")

    def look(self) -> None:
        """One look at the connections in use (the thread's, every ``tick``)."""
        now = time.monotonic()
        stalled: dict[int, list[psycopg.Connection]] = {}
        probes: dict[int, tuple[Breaker, Callable[[], bool]]] = {}
        for key, (conn, breaker, is_silent) in list(self._in_use.items()):
            if conn.pgconn.transaction_status != TransactionStatus.ACTIVE:
                self._since.pop(key, None)
            elif now - self._since.setdefault(key, now) >= self.stall_seconds:
                stalled.setdefault(id(breaker), []).append(conn)
                probes[id(breaker)] = (breaker, is_silent)
        for key in self._since.keys() - self._in_use.keys():
            del self._since[key]
        for group, (breaker, is_silent) in probes.items():
            if not is_silent():
                for conn in stalled[group]:
                    self._since[id(conn)] = time.monotonic()  # slow, not stalled: ask again later
                continue
            # Every query in flight on that server waits as those do, the ones that began
            # since (or while this thread was probing another server) too
            breaker.found_silent()
            hung = [
                conn
                for conn, owner, _ in list(self._in_use.values())
                if owner is breaker and conn.pgconn.transaction_status == TransactionStatus.ACTIVE
            ]
            logger.warning(
                "the database left %d queries unanswered %s s, and a new connection too: the %d "
                "queries in flight on it abandoned, the database refused for %s s",
                len(stalled[group]),
                self.stall_seconds,
                len(hung),
                breaker.down_seconds,
            )
            for conn in hung:
                shut_down(conn)


#: The connections in use in this process, the platform's own database's and the db service's.
stalls = Stalls(settings.PLATFORM_DB_STALL_SECONDS)
localstate.register_state("db.stalls", reset=stalls.clear)
localstate.register_thread("db-stalls", alive=stalls.alive)


def shut_down(conn: psycopg.Connection) -> None:
    """Shut the socket of ``conn``, in a query, down from another thread: the thread waiting for
    the query's answer reads the end of the connection at once.  The descriptor is duplicated
    first, then the connection checked again, so that a descriptor the connection closed (and
    the process reused) in between is never touched."""
    try:
        duplicate = os.dup(conn.pgconn.socket)
    except (OSError, psycopg.Error):
        return
    with socket.socket(fileno=duplicate) as sock:
        if conn.pgconn.transaction_status == TransactionStatus.ACTIVE:
            sock.shutdown(socket.SHUT_RDWR)
