"""Tests of what the platform does while Redis is known down (platformsite.cache.Guard)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: The marks of a test that needs a real Redis server.
NEEDS_REDIS = [
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)"),
]


@contextmanager
def redis_known_down() -> Iterator[None]:
    """As after a command to REDIS_URL's server went unanswered: every command is refused at once
    (``RedisDown``), until the block ends."""
    from platformsite.cache import redis_guard

    guard = redis_guard()
    guard.failed()
    try:
        yield
    finally:
        guard.answered()
