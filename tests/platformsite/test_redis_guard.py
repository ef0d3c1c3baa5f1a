"""A Redis that stops answering (hung, or a network that drops packets): the requests in flight
wait one timeout, and the others are refused at once while it is known down, instead of each
holding a worker thread for redis-py's timeout (platformsite.cache.Guard).  Against a redis-server
of the test's own, frozen with SIGSTOP, and, for the channel layer, a layer that never answers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time

import pytest
import redis
from celery import Celery
from django.conf import settings as django_settings

from platformsite import cache as shared
from platformsite import live, tasks
from tests.faults.stack import Redis
from tests.servers import free_port


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own (it is frozen and killed), and its URL."""
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server")
    server = Redis(tmp_path / "redis")
    server.start()
    server.wait()
    yield server, server.url(0)
    server.signal(signal.SIGCONT)
    server.kill()


@pytest.fixture
def quick(settings):
    settings.PLATFORM_REDIS_TIMEOUT = 0.3
    settings.PLATFORM_REDIS_DOWN_SECONDS = 0.6


def _client(url: str) -> redis.Redis:
    pool = shared.GuardedConnectionPool.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
    return redis.Redis(connection_pool=pool)


def test_a_redis_that_stops_answering__one_timeout_then_refused_at_once_until_it_answers(own_redis, quick):
    server, url = own_redis
    client = _client(url)
    client.set("k", "v")
    server.signal(signal.SIGSTOP)
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    with pytest.raises(shared.RedisDown) as refused:
        client.get("k")  # not sent: its connection would only wait out the timeout again
    assert refused.value.retry_after == 1
    assert isinstance(refused.value, shared.CACHE_DOWN)
    server.signal(signal.SIGCONT)
    time.sleep(0.7)  # the outage's window over: the next command is tried, and answered
    assert client.get("k") == b"v"
    assert client.get("k") == b"v"
    assert client.connection_pool.connection_class.guard.down_until == 0


def test_a_redis_whose_listen_queue_is_full__one_connect_waits__the_others_are_refused_before_connecting(
    quick,
):
    # A hung server soon stops accepting connections too: its listen queue fills (here: one
    # connection queued, never accepted), and a connect then waits out its timeout.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as hung:
        port = hung.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            client = _client(f"redis://127.0.0.1:{port}/0")
            with pytest.raises(redis.TimeoutError, match="connecting"):
                client.get("k")
            for _ in range(3):
                with pytest.raises(shared.RedisDown):
                    client.get("k")  # no connect tried: it would only wait out the timeout again


def test_after_the_window__one_command_tries_while_the_others_are_still_refused():
    guard = shared.Guard("test:1", down_seconds=0.2, probe_seconds=30)
    guard.failed()
    with pytest.raises(shared.RedisDown):
        guard.admit()
    time.sleep(0.25)
    guard.admit()  # the probe
    with pytest.raises(shared.RedisDown):
        guard.admit()
    guard.answered()
    guard.admit()
    guard.admit()


def test_a_stopped_redis__refuses_connections_by_itself__and_is_not_marked_down(own_redis, quick):
    server, url = own_redis
    client = _client(url)
    server.kill()
    for _ in range(2):
        with pytest.raises(redis.ConnectionError) as failed:
            client.get("k")
        assert not isinstance(failed.value, shared.RedisDown)
    assert client.connection_pool.connection_class.guard.down_until == 0


def test_connections_to_one_server__share_its_guard(own_redis, quick):
    _, url = own_redis
    first, second = _client(url), _client(url)
    assert first.connection_pool.connection_class.guard is second.connection_pool.connection_class.guard
    assert shared.guard_for(redis.connection.parse_url(url)) is first.connection_pool.connection_class.guard


class SilentLayer:
    """A channel layer whose Redis never answers."""

    sent = cancelled = 0

    async def group_send(self, group, message):
        SilentLayer.sent += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            SilentLayer.cancelled += 1
            raise


def test_notify__a_layer_that_does_not_answer__waits_the_timeout_once_then_skips_while_down(
    settings, quick, monkeypatch, caplog
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    SilentLayer.sent = SilentLayer.cancelled = 0
    monkeypatch.setattr(live, "get_channel_layer", SilentLayer)
    live.notify("config.payments", {"type": "config.changed"})
    assert SilentLayer.cancelled == 1  # given up after PLATFORM_REDIS_TIMEOUT
    live.notify("config.payments", {"type": "config.changed"})
    assert SilentLayer.sent == 1  # the second not even tried
    assert [record.levelname for record in caplog.records] == ["WARNING", "WARNING"]
    assert "did not answer" in caplog.records[1].getMessage()


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs a Redis server (REDIS_URL)")
def test_the_shared_cache__takes_guarded_connections():
    from django.core.cache import cache

    pool = cache._cache.get_client(write=True).connection_pool
    assert isinstance(pool, shared.GuardedConnectionPool)
    assert pool.connection_kwargs["socket_timeout"] == 2.0


@pytest.fixture
def broker_app(own_redis, quick, settings):
    """A Celery app on the test's own Redis, with the platform's publish settings; its task."""
    _, url = own_redis
    settings.REDIS_URL = url
    settings.PLATFORM_TASK_MODE = "celery"
    app = Celery("redis-guard-test", broker=url, set_as_current=False)
    app.conf.broker_transport_options = {"socket_timeout": 0.3, "socket_connect_timeout": 0.3}
    app.conf.task_publish_retry_policy = django_settings.CELERY_TASK_PUBLISH_RETRY_POLICY

    @app.task(name="redis_guard_test.noop")
    def noop() -> None:
        pass

    yield app, noop
    app.close()


def test_a_publish_to_a_broker_that_stopped_answering__gives_up__and_the_next_is_refused_at_once(
    own_redis, broker_app
):
    server, _ = own_redis
    _, noop = broker_app
    tasks.dispatch(noop)  # Redis answers: sent
    server.signal(signal.SIGSTOP)
    with pytest.raises(Exception) as failed:
        tasks.dispatch(noop)
    assert not isinstance(failed.value, shared.RedisDown)  # this one waited for its answer
    with pytest.raises(shared.RedisDown):
        tasks.dispatch(noop)


@pytest.mark.django_db
def test_enqueued_work_the_broker_cannot_take__does_not_fail_the_commit(
    own_redis, broker_app, django_capture_on_commit_callbacks, caplog
):
    server, _ = own_redis
    _, noop = broker_app
    server.signal(signal.SIGSTOP)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.enqueue(noop)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.enqueue(noop)
    assert [record.getMessage().split(",")[0] for record in caplog.records] == [
        "redis_guard_test.noop not sent"
    ] * 2


def test_a_redis_known_down__is_answered_503_with_retry_after_the_seconds_left():
    from platformsite.api.errors import outage

    answer = outage(shared.RedisDown("127.0.0.1:6379", 4))
    assert (answer.status, answer.retry_after) == (503, 4)


def test_monitor_live_push__a_layer_that_does_not_answer__waits_the_timeout_once_then_skips(
    settings, quick, monkeypatch
):
    # A flip's live message is sent after its commit: a Redis that hangs held the request (and,
    # on a server with few threads, every request behind it) until it answered again.
    from monitor_app.services import alerts

    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    SilentLayer.sent = SilentLayer.cancelled = 0
    monkeypatch.setattr(live, "get_channel_layer", SilentLayer)
    began = time.monotonic()
    alerts.push({"type": "flip", "flip": {}})
    alerts.push({"type": "flip", "flip": {}})
    assert time.monotonic() - began < 2
    assert (SilentLayer.sent, SilentLayer.cancelled) == (1, 1)
