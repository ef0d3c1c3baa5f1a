"""Django's PostgreSQL engine, whose pool never hands out a connection the server has ended.

After a restart or a failover every idle connection in the pool is dead, and Django's pool
(without ``CONN_HEALTH_CHECKS``, whose check is a query on every checkout) would fail one
request with each.  Those are replaced here before a request sees them.
"""

from __future__ import annotations

from django.db.backends.postgresql import base

from platformsite.db import replace_ended


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        def take():
            return super(DatabaseWrapper, self).get_new_connection(conn_params)

        conn = take()
        return conn if self.pool is None else replace_ended(conn, self.pool, take)
