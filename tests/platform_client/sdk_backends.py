"""Real Redis and PostgreSQL for the SDK's kv and sync tests (skipped when the run has none).

Redis: the server and database of ``REDIS_URL`` as given; every test's keys live under a prefix
unique to this test run and test (:func:`unique_prefix`), deleted afterwards, so the tests never
flush a database and cannot collide with another run (or another project) sharing it.
PostgreSQL: the server of ``DATABASE_URL`` on a database ``sdk_<name>`` created when missing; the
lease tables are shared, the lock names carry the same unique prefix.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

#: Unique to this test run: every key and lock name the SDK tests make starts with it.
RUN = f"sdktest-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def unique_prefix(label: str = "t") -> str:
    """A key prefix no other test (of this run or any other) uses."""
    return f"{RUN}-{label}-{uuid.uuid4().hex[:6]}"


def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis server (REDIS_URL)")
    return url


def delete_prefixed(url: str, prefix: str) -> int:
    """Delete the keys holding ``prefix`` (at their start, or inside a sync key's hash tag)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*"))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


@contextmanager
def redis_prefix(label: str = "t") -> Iterator[tuple[str, str]]:
    """``(REDIS_URL, a unique prefix)``; the prefix's keys are deleted on the way out."""
    url = redis_url()
    prefix = unique_prefix(label)
    try:
        yield url, prefix
    finally:
        delete_prefixed(url, prefix)


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
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another run made it
                conn.execute(f'CREATE DATABASE "{database}"')
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))
