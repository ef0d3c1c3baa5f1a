"""platform_client.kv: get/put/delete, TTLs, namespaces on every backend; the consistent-hash
ring passing over a failed node and never serving a rejoined node's stale values."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pymemcache.test.utils import MockMemcacheClient

from platform_client import kv
from tests.platform_client.sdk_backends import redis_prefix
from tests.platform_client.tcp_proxy import Proxy

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis", "memcached"])
def store(request):
    if request.param == "memory":
        made = kv.MemoryKV("app")
    elif request.param == "redis":
        with redis_prefix("kv") as (url, prefix):
            made = kv.from_url(url, namespace=f"{prefix}:app")
            yield made
            made.close()
        return
    else:
        made = kv.MemcachedKV(MockMemcacheClient(), namespace="app")
    yield made
    made.close()


def test_get_put_delete(store):
    assert store.get("missing") is None
    assert store.get("missing", b"default") == b"default"
    store.put("a", "text")
    store.put("b", b"\x00bytes")
    assert (store.get("a"), store.get("b")) == (b"text", b"\x00bytes")
    assert store.delete("a") is True
    assert store.delete("a") is False
    assert store.get("a") is None and store.get("b") == b"\x00bytes"


def test_namespaces_do_not_see_each_other(store):
    carts, orders = store.namespace("carts"), store.namespace("orders")
    carts.put("7", "cart")
    orders.put("7", "order")
    assert (carts.get("7"), orders.get("7"), store.get("7")) == (b"cart", b"order", None)
    assert store.get("carts:7") == b"cart"  # a namespace is a key prefix


def test_bad_input_is_refused_and_nothing_is_lost(store):
    store.put("kept", "value")
    with pytest.raises(ValueError, match="key"):
        store.put("", "x")
    with pytest.raises(ValueError, match="ttl"):
        store.put("kept", "other", ttl=0)
    with pytest.raises(TypeError, match="bytes or str"):
        store.put("kept", 7)
    assert store.get("kept") == b"value"


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (-1, ValueError),
        ("60", TypeError),
        (True, TypeError),
    ],
)
def test_a_ttl_that_is_not_a_positive_finite_number_is_refused(ttl, error):
    store = kv.MemoryKV()
    store.put("kept", "value")
    with pytest.raises(error, match="ttl"):
        store.put("kept", "other", ttl=ttl)
    assert store.get("kept") == b"value"


@pytest.mark.parametrize("replicas", [0, -5])
def test_ring__replicas_must_be_positive(replicas):
    with pytest.raises(ValueError, match="replicas"):
        kv.RingKV({"a": kv.MemoryKV()}, replicas=replicas)


@pytest.mark.parametrize(
    "url",
    [
        "ring+redis://",
        "ring+redis://h1:6379,,h2:6379/0",
        "ring+redis://h1:6379,h1:6379/0",
        "ring+memory://a,b?replicas=x",
    ],
)
def test_ring_url__every_node_named_once_and_replicas_a_number(url):
    with pytest.raises(ValueError, match=r"ring URL|replicas"):
        kv.from_url(url)


@pytest.mark.parametrize("name", ["", None])
def test_namespace__an_empty_name_is_refused(name):
    with pytest.raises(ValueError, match="namespace"):
        kv.MemoryKV("app").namespace(name)


def test_memory_ttl():
    clock = Clock()
    store = kv.MemoryKV(clock=clock)
    store.put("short", "x", ttl=1)
    store.put("long", "y", ttl=100)
    clock.now += 2
    assert (store.get("short"), store.get("long")) == (None, b"y")
    assert store.delete("short") is False


@pytest.mark.redis
def test_redis_ttl_is_set_in_milliseconds():
    with redis_prefix("ttl") as (url, prefix):
        store = kv.from_url(url, namespace=prefix)
        store.put("k", "v", ttl=30)
        assert 29_000 < store.client.pttl(f"{prefix}:k") <= 30_000
        store.put("k", "v")
        assert store.client.pttl(f"{prefix}:k") == -1
        store.close()


def test_memcached_long_and_spaced_keys_are_hashed():
    store = kv.MemcachedKV(MockMemcacheClient())
    store.put("x" * 300, "long")
    store.put("with space", "spaced")
    assert (store.get("x" * 300), store.get("with space")) == (b"long", b"spaced")


def test_unreachable_backend_names_it():
    store = kv.from_url("redis://127.0.0.1:1/3")
    with pytest.raises(kv.KVUnavailable, match=r"^redis 127\.0\.0\.1:1/3: "):
        store.get("x")
    with pytest.raises(ValueError, match="unknown kv URL scheme"):
        kv.from_url("etcd://x")
    with pytest.raises(ValueError, match=r"nodes once .*'ring\+redis://:\*\*\*@") as raised:
        kv.from_url("ring+redis://:secret@a:1,:secret@a:1")
    assert "secret" not in str(raised.value)


# --- the ring ---------------------------------------------------------------------------------


class Flaky(kv.MemoryKV):
    """A node that can be cut off (raises KVUnavailable) while keeping its data."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise kv.KVUnavailable(f"{self.label} is down")

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def _get(self, key):
        self._check()
        return super()._get(key)

    def _put(self, key, value, ttl):
        self._check()
        super()._put(key, value, ttl)

    def incr(self, key):
        self._check()
        return super().incr(key)

    def ping(self):
        self._check()


def key_owned_by(ring: kv.RingKV, name: str) -> str:
    return next(f"k{i}" for i in range(10_000) if ring.owners(ring.key(f"k{i}"))[0] == name)


def test_ring__spreads_keys_over_every_node_and_moves_few_when_one_is_added():
    nodes = {name: kv.MemoryKV() for name in "abc"}
    ring = kv.RingKV(nodes, replicas=100)
    owners = Counter(ring.owners(f"key{i}")[0] for i in range(3000))
    assert set(owners) == {"a", "b", "c"} and min(owners.values()) > 600
    bigger = kv.RingKV({**nodes, "d": kv.MemoryKV()}, replicas=100)
    moved = sum(ring.owners(f"key{i}")[0] != bigger.owners(f"key{i}")[0] for i in range(3000))
    assert moved < 3000 * 0.4  # about a quarter: only the keys the new node takes
    assert all(
        bigger.owners(f"key{i}")[0] == "d"
        for i in range(3000)
        if ring.owners(f"key{i}")[0] != bigger.owners(f"key{i}")[0]
    )


@pytest.mark.parametrize("rejoin", ["epoch", "flush"])
def test_ring__a_rejoined_node_never_serves_its_stale_values(rejoin):
    clock = Clock()
    a, b = Flaky("a"), Flaky("b")
    ring = kv.RingKV({"a": a, "b": b}, dead_timeout=10, rejoin=rejoin, clock=clock)
    key = key_owned_by(ring, "a")
    ring.put(key, "v1")
    a.down = True
    assert ring.get(key) is None  # a is passed over: the next node does not have it
    ring.put(key, "v2")  # written to b while a is away
    assert ring.get(key) == b"v2" and "a" in ring.dead
    a.down = False
    clock.now += 11  # a answers again
    assert any(value == b"v1" for value, _ in a._data.values()) or rejoin == "flush"
    assert ring.get(key) is None  # a owns the key again, and its v1 is not served
    assert "a" not in ring.dead
    ring.put(key, "v3")
    assert ring.get(key) == b"v3"


def test_ring__every_node_down__clear_exception():
    a = Flaky("a")
    ring = kv.RingKV({"a": a})
    a.down = True
    with pytest.raises(kv.KVUnavailable, match="no node of the ring answered: a is down"):
        ring.put("k", "v")


@pytest.mark.redis
def test_ring_on_redis__node_cut_and_restored_over_the_network__other_process_sees_the_new_epoch():
    with redis_prefix("ring") as (url, prefix):
        target = urlsplit(url)
        proxy = Proxy((target.hostname, target.port or 6379))
        clock = Clock()
        # Two nodes on one server, each under its own namespace (its keys and its epoch).
        via_proxy = urlunsplit((target.scheme, f"127.0.0.1:{proxy.port}", target.path, "", ""))
        ns_a, ns_b = f"{prefix}:node-a", f"{prefix}:node-b"
        try:
            node_a = kv.from_url(via_proxy, namespace=ns_a)
            ring = kv.RingKV(
                {"a": node_a, "b": kv.from_url(url, namespace=ns_b)},
                namespace="shop",
                dead_timeout=5,
                clock=clock,
            )
            key = key_owned_by(ring, "a")
            ring.put(key, "v1")
            proxy.cut()
            ring.put(key, "v2")  # a refused the connection: b holds it now
            assert "a" in ring.dead and ring.get(key) == b"v2"
            proxy.restore()
            clock.now += 6
            assert ring.get(key) is None  # a rejoined under epoch 1: its v1 stays unread
            assert ring.epochs["a"] == 1
            ring.put(key, "v3")
            # Another process with its own ring over the same nodes reads the node's epoch.
            script = (
                "from platform_client import kv;"
                f"r = kv.RingKV({{'a': kv.from_url({url!r}, namespace={ns_a!r}),"
                f" 'b': kv.from_url({url!r}, namespace={ns_b!r})}}, namespace='shop');"
                f"print(r.get({key!r}).decode(), r.epochs['a'])"
            )
            out = subprocess.run(
                [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
            )
            assert out.stdout.split() == ["v3", "1"]
            ring.close()
        finally:
            proxy.close()


# --- real memcached servers (started here when the binary is installed) ----------------------


@pytest.fixture
def memcached_servers():
    import shutil
    import socket
    import time

    from tests.servers import free_port

    binary = shutil.which("memcached")
    if binary is None:
        pytest.skip("needs the memcached binary")
    procs, ports = [], []
    for _ in range(2):
        port = free_port()
        procs.append(
            subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "nobody"])
        )
        ports.append(port)
    for port in ports:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    yield ports
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_memcached_real_server__get_put_delete_ttl_incr(memcached_servers):
    store = kv.from_url(f"memcached://127.0.0.1:{memcached_servers[0]}", namespace="app")
    store.put("a", "1", ttl=30)
    store.put("with space " + "x" * 300, "long")
    assert store.get("a") == b"1" and store.get("with space " + "x" * 300) == b"long"
    assert store.delete("a") is True and store.get("a") is None and store.delete("a") is False
    assert store.incr("counter") == 1 and store.incr("counter") == 2
    store.close()


def test_ring_on_memcached__a_partitioned_node_rejoins_under_a_new_epoch(memcached_servers):
    proxy = Proxy(("127.0.0.1", memcached_servers[0]))
    clock = Clock()
    try:
        ring = kv.from_url(
            f"ring+memcached://127.0.0.1:{proxy.port},127.0.0.1:{memcached_servers[1]}", namespace="shop"
        )
        ring.clock, ring.dead_timeout = clock, 5
        first = f"127.0.0.1:{proxy.port}"
        key = key_owned_by(ring, first)
        ring.put(key, "v1")
        proxy.cut()
        ring.put(key, "v2")
        assert first in ring.dead and ring.get(key) == b"v2"
        proxy.restore()
        clock.now += 6
        assert ring.get(key) is None and ring.epochs[first] == 1
        direct = kv.from_url(f"memcached://127.0.0.1:{memcached_servers[0]}")
        assert direct._get(f"0|{ring.key(key)}") == b"v1"  # the stale value is there, unserved
        ring.close()
    finally:
        proxy.close()


def test_redacted__a_url_in_an_error_shows_no_password():
    from platform_client._urls import redacted

    assert redacted("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redacted("redis://app:pw@cache:6379/0?x=1") == "redis://app:***@cache:6379/0?x=1"
    assert redacted("redis://:p@w@cache/0") == "redis://:***@cache/0"
    assert redacted("redis://[::1") == "(a URL that cannot be parsed)"
