"""Invalidation announcements for process-local read caches (platformsite.invalidation)."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings

from platformsite import invalidation, localstate

needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def heard():
    """Registers a test topic; yields what its handlers saw."""
    seen: dict[str, list] = {"keys": [], "resets": []}
    invalidation.register("test", seen["keys"].append, lambda: seen["resets"].append(True))
    yield seen
    invalidation._bus.handlers.pop("test", None)


def test_announce__delivers_in_this_process_at_once_and_moves_the_epoch(heard):
    taken = invalidation.epoch()
    invalidation.announce("test", "orders")
    assert heard["keys"] == ["orders"]
    assert not invalidation.still(taken)


def test_reset_all__tells_every_topic_to_drop_its_copies_and_moves_the_epoch(heard):
    taken = invalidation.epoch()
    localstate.reset_all()
    assert heard["resets"] == [True]
    assert not invalidation.still(taken)


@pytest.mark.skipif(bool(os.environ.get("REDIS_URL")), reason="the embedded mode (no Redis)")
def test_listening__without_redis__always(settings):
    assert invalidation.listening()
    assert invalidation.trust_seconds(0.0) == invalidation.TRUST_SECONDS


@needs_redis
def test_listener__hears_another_nodes_announcement(heard):
    import redis

    assert wait_for(invalidation.listening), "the listener did not subscribe"
    other_node = redis.Redis.from_url(settings.REDIS_URL)
    other_node.publish(invalidation.CHANNEL, "elsewhere:1\x1ftest\x1fpayments")
    assert wait_for(lambda: heard["keys"] == ["payments"])


@needs_redis
def test_listener__ignores_its_own_announcements(heard):
    assert wait_for(invalidation.listening), "the listener did not subscribe"
    invalidation.announce("test", "mine")
    invalidation.announce("test", "last")
    time.sleep(0.3)
    assert heard["keys"] == ["mine", "last"]  # delivered once each, at once, not again from Redis


@needs_redis
def test_listener__connection_killed__stops_trusting_then_resubscribes_and_resets(heard):
    import redis

    assert wait_for(invalidation.listening), "the listener did not subscribe"
    heard["resets"].clear()
    admin = redis.Redis.from_url(settings.REDIS_URL)
    admin.client_kill_filter(_type="pubsub")
    # copies are dropped when the loss is seen, and again once subscribed anew
    assert wait_for(lambda: len(heard["resets"]) >= 2 and invalidation.listening())
    assert invalidation.trust_seconds(0.0) == invalidation.TRUST_SECONDS
