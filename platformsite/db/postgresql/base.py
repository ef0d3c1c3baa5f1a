"""Django's PostgreSQL engine, whose pool never hands out a connection the server has ended, and
does not hold requests while the database is down.

After a restart or a failover every idle connection in the pool is dead, and Django's pool
(without ``CONN_HEALTH_CHECKS``, whose check is a query on every checkout) would fail one
request with each.  Those are replaced here before a request sees them.  A database found
unreachable is not waited for again for ``PLATFORM_DB_DOWN_SECONDS`` (see
:class:`platformsite.db.Breaker`): requests fail at once, answered 503 with ``Retry-After``.  A
query left unanswered ``PLATFORM_DB_STALL_SECONDS`` by a server that does not answer a new
connection either is abandoned (:class:`platformsite.db.Stalls`).
"""

from __future__ import annotations

from django.conf import settings
from django.db.backends.postgresql import base

from platformsite import localstate
from platformsite.db import Breaker, reachable, silent, stalls

#: Each database's breaker, by alias (as Django keeps its pools).
_breakers: dict[str, Breaker] = {}
localstate.register_state("db.breakers", reset=_breakers.clear)

#: Seconds the probe of a database that kept a request waiting may take to connect.
PROBE_CONNECT_TIMEOUT = 3


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        def take():
            return super(DatabaseWrapper, self).get_new_connection(conn_params)

        def probe(ask):
            return lambda: ask(**{"connect_timeout": PROBE_CONNECT_TIMEOUT, **conn_params})

        breaker = _breakers.get(self.alias)
        if breaker is None:
            breaker = _breakers.setdefault(self.alias, Breaker(settings.PLATFORM_DB_DOWN_SECONDS))
        pool = self.pool
        conn = take() if pool is None else breaker.getconn(pool, take, probe(reachable))
        stalls.watch(conn, breaker, probe(silent))
        return conn

    def _close(self):
        if self.connection is not None:
            stalls.forget(self.connection)
        return super()._close()
