"""Django's PostgreSQL engine, whose pool never hands out a connection the server has ended.

After a restart or a failover every idle connection in the pool is dead, and Django's pool
(without ``CONN_HEALTH_CHECKS``, whose check is a query on every checkout) would fail one
request with each.  Those are replaced here before a request sees them.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from platformsite.db import ended_by_server


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        pool = self.pool
        if pool is None:
            return conn
        for _ in range(pool.max_size):
            if not ended_by_server(conn):
                break
            conn.close()
            pool.putconn(conn)  # the pool drops it and opens another in the background
            conn = super().get_new_connection(conn_params)
        return conn
