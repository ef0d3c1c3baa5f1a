"""Real Redis and PostgreSQL for the SDK's kv and sync tests (skipped when the run has none).

Redis: the server of ``REDIS_URL`` on databases 12-15 (the SDK's own); PostgreSQL: the server of
``DATABASE_URL`` on a database ``sdk_<name>`` created when missing.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest


def redis_url(db: int) -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis server (REDIS_URL)")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def flushed_redis_url(db: int) -> str:
    import redis

    url = redis_url(db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def postgres_url(name: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs a real PostgreSQL server (DATABASE_URL)")
    import psycopg

    parts = urlsplit(url)
    database = f"sdk_{name}"
    with psycopg.connect(
        urlunsplit((parts.scheme, parts.netloc, "/postgres", "", "")), autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    dsn = urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS platform_sync_leases, platform_sync_fenced")
    return dsn
