"""Queries left unanswered by a database that stopped answering (``platformsite.db.Stalls``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from types import SimpleNamespace

import psycopg
import pytest
from django.db import OperationalError, connection
from psycopg.pq import TransactionStatus

from platformsite.api.errors import outage
from platformsite.db import Breaker, Stalls, shut_down, silent
from platformsite.db.postgresql import base as engine
from tests.postgres import end_backend

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL=postgres://..."
)


def _in(status: TransactionStatus, sock: socket.socket | None = None) -> SimpleNamespace:
    """A stand-in for a psycopg connection in ``status``, on ``sock``."""
    return SimpleNamespace(pgconn=SimpleNamespace(socket=sock and sock.fileno(), transaction_status=status))


def test_silent__is_a_server_that_accepts_a_connection_and_never_answers():
    # The kernel queues the connection, nothing reads it: a hung server, as a client sees it
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        started = time.monotonic()
        assert silent(host="127.0.0.1", port=hung.getsockname()[1], connect_timeout=1)
        assert time.monotonic() - started < 3


def test_silent__not_a_server_that_answers__even_with_a_refusal():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not silent(host="127.0.0.1", port=port, connect_timeout=1)


def test_shut_down__ends_the_wait_of_the_thread_reading_the_socket():
    ours, server = socket.socketpair()
    conn = _in(TransactionStatus.ACTIVE, ours)
    read = []
    reader = threading.Thread(target=lambda: read.append(ours.recv(10)))
    reader.start()
    time.sleep(0.1)

    shut_down(conn)

    reader.join(2)
    assert read == [b""]  # the end of the connection, as from a server that closed it
    ours.close()
    server.close()


def test_shut_down__leaves_a_connection_no_longer_in_a_query_alone():
    ours, server = socket.socketpair()
    conn = _in(TransactionStatus.IDLE, ours)

    shut_down(conn)

    server.sendall(b"x")
    assert ours.recv(1) == b"x"
    ours.close()
    server.close()


def _params() -> dict:
    """``psycopg.connect``'s arguments for the test database."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    return params


def _connect() -> psycopg.Connection:
    return psycopg.connect(**_params(), autocommit=True)


def _watch(conn: psycopg.Connection, silent: bool) -> tuple[Stalls, Breaker, list[int]]:
    """``conn`` watched (a stall after 0.3 s), its probe finding the server ``silent``; the watch,
    the connection's breaker and the probes made."""
    stalls, breaker, probes = Stalls(stall_seconds=0.3, tick=0.1), Breaker(60), []
    stalls.watch(conn, breaker, lambda: probes.append(1) or silent)
    return stalls, breaker, probes


@pytest.mark.postgres
@needs_postgres
def test_a_query_on_a_silent_server__is_abandoned_and_the_database_refused():
    with _connect() as conn:
        _, breaker, probes = _watch(conn, silent=True)
        backend = conn.info.backend_pid

        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT pg_sleep(20)")
        end_backend(backend, **_params())

    assert time.monotonic() - started < 3 and probes
    assert breaker.silent_until > time.monotonic() + 50 and breaker.down_until == breaker.silent_until


@pytest.mark.postgres
@needs_postgres
def test_a_slow_query_on_a_server_that_answers__is_left_alone():
    with _connect() as conn:
        stalls, breaker, probes = _watch(conn, silent=False)

        assert conn.execute("SELECT pg_sleep(1.2), 7").fetchone()[1] == 7

        # asked about once a stall_seconds, not on every look
        assert 1 <= len(probes) <= 4
        stalls.forget(conn)
        probes.clear()
        conn.execute("SELECT pg_sleep(0.6)")
    assert not probes and breaker.down_until == 0.0


def test_a_silent_server__every_query_in_flight_on_it_is_abandoned_not_only_the_stalled_one():
    stalls, breaker, other = Stalls(stall_seconds=5), Breaker(60), Breaker(60)
    pairs = [socket.socketpair() for _ in range(3)]
    stalled, recent, elsewhere = (_in(TransactionStatus.ACTIVE, ours) for ours, _ in pairs)
    stalls._in_use.update(
        {
            id(stalled): (stalled, breaker, lambda: True),
            id(recent): (recent, breaker, lambda: True),  # began while another server was probed
            id(elsewhere): (elsewhere, other, lambda: pytest.fail("asked")),
        }
    )
    stalls.look()
    stalls._since[id(stalled)] -= 5

    stalls.look()

    for ours, _ in pairs:
        ours.setblocking(False)
    assert [ours.recv(1) for ours, _ in pairs[:2]] == [b"", b""]
    with pytest.raises(BlockingIOError):  # the other server's query goes on
        pairs[2][0].recv(1)
    assert breaker.silent_until > 0 and other.silent_until == 0
    for pair in pairs:
        for end in pair:
            end.close()


def test_a_connection_not_in_a_query__is_never_asked_about():
    stalls = Stalls(stall_seconds=0.1, tick=0.05)
    idle = _in(TransactionStatus.INTRANS)
    stalls._in_use[id(idle)] = (idle, Breaker(60), lambda: pytest.fail("asked"))
    for _ in range(3):
        stalls.look()
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@needs_postgres
def test_the_platforms_own_queries__are_watched_and_answered_503(monkeypatch):
    monkeypatch.setattr(engine, "stalls", Stalls(stall_seconds=0.3, tick=0.1))
    monkeypatch.setattr(engine, "silent", lambda **params: True)
    connection.close()  # the next query takes its connection through the engine
    try:
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        with pytest.raises(OperationalError) as abandoned, connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(20)")
        end_backend(backend, **_params())
        answer = outage(abandoned.value)
        assert answer.status == 503

        # Then the database is refused at once for PLATFORM_DB_DOWN_SECONDS, even with
        # connections in the pool (they wait on the same server)
        connection.close()
        started = time.monotonic()
        with pytest.raises(OperationalError):
            connection.ensure_connection()
        assert time.monotonic() - started < 0.1
    finally:
        engine._breakers.pop("default", None)
        connection.close()
    assert not engine.stalls._in_use


def test_a_forked_process__watches_with_a_thread_of_its_own():
    stalls = Stalls(stall_seconds=5)
    stalls.watch(_in(TransactionStatus.IDLE), Breaker(60), lambda: False)
    assert stalls.alive()

    child = os.fork()
    if child == 0:  # the child has neither the thread nor its parent's connections
        forgot = not stalls.alive() and not stalls._in_use
        stalls.watch(_in(TransactionStatus.IDLE), Breaker(60), lambda: False)
        os._exit(0 if forgot and stalls.alive() else 1)

    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
