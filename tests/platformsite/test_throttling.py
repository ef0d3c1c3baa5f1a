"""The throttle's counter: local counting, flushed to the shared cache in bounded steps."""

from __future__ import annotations

from django.core.cache import cache

from platformsite.api.throttling import _Counters


def test_counter__large_limit__flushes_in_chunks_and_sees_other_processes():
    counters = _Counters()
    # given a limit of 1,000 a minute: chunks of 10 calls or 250 ms
    estimates = [counters.count("client:a", 7, 60, 1000, now=100.0) for _ in range(5)]
    # then the first call flushed, the next four are counted locally
    assert estimates == [1, 2, 3, 4, 5]
    assert cache.get("throttle:client:a:7") == 1
    # when another process adds 100 calls, this one sees them at its next flush
    cache.incr("throttle:client:a:7", 100)
    assert counters.count("client:a", 7, 60, 1000, now=100.1) == 6
    assert counters.count("client:a", 7, 60, 1000, now=100.4) == 107
    assert cache.get("throttle:client:a:7") == 107


def test_counter__chunk_reached__flushes_before_the_interval():
    counters = _Counters()
    # the first call flushes; ten more fill a chunk (1% of 1,000) and flush before 250 ms pass
    for _ in range(11):
        counters.count("client:b", 1, 60, 1000, now=5.0)
    assert cache.get("throttle:client:b:1") == 11


def test_counter__new_window__starts_from_zero():
    counters = _Counters()
    counters.count("client:c", 1, 60, 50, now=1.0)
    assert counters.count("client:c", 2, 60, 50, now=61.0) == 1


def test_counter__small_limit__is_exact_on_every_call():
    counters = _Counters()
    for expected in range(1, 6):
        assert counters.count("client:d", 1, 60, 50, now=1.0) == expected
        assert cache.get("throttle:client:d:1") == expected


def test_counter__shared_cache_down__counts_in_this_process_then_flushes_when_back(monkeypatch):
    # Redis restarting under load (tests/faults): every API call raised from the throttle (a 503)
    from redis.exceptions import ConnectionError as RedisConnectionError

    from platformsite.api import throttling

    counters = _Counters()
    real_add = throttling.shared_add

    def unreachable(*args):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6391. Connection refused.")

    monkeypatch.setattr(throttling, "shared_add", unreachable)
    # small limit: a round trip on every call, each failing; the calls are still counted
    assert [counters.count("client:d", 1, 60, 50, now=1.0) for _ in range(3)] == [1, 2, 3]
    assert counters.count("client:d", 1, 60, 3, now=1.0) == 4  # over a limit of 3: refused
    # the cache back, the calls counted meanwhile reach the shared counter at the next flush
    monkeypatch.setattr(throttling, "shared_add", real_add)
    assert counters.count("client:d", 1, 60, 50, now=1.0) == 5
    assert cache.get("throttle:client:d:1") == 5
