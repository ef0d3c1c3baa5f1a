"""Process-local state is registered in one place: tests reset it, /metrics reports it."""

from __future__ import annotations

import ast
import importlib
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from platformsite import localstate

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
#: The server's packages (the SDK in platform_client runs in its callers' processes).
PACKAGES = [
    "auth_app",
    "config_app",
    "dbproxy_app",
    "discovery_app",
    "event_app",
    "monitor_app",
    "platformsite",
    "router_app",
    "trace_app",
]
#: Module-level state that needs no registration, and why.
NOT_STATE = {
    ("platformsite/localstate.py", "_registry"): "the registry itself",
    ("platformsite/settings.py", "CELERY_BEAT_SCHEDULE"): "configuration, filled once at start-up",
    ("platformsite/services.py", "all_services"): "read once from INSTALLED_APPS, never changes",
    ("platformsite/services.py", "service_names"): "read once from INSTALLED_APPS, never changes",
    ("platformsite/services.py", "ingest_paths"): "read once from INSTALLED_APPS, never changes",
    ("platformsite/sealing.py", "_fernet"): "keyed by the SECRET_KEY value: cannot go stale",
    ("platformsite/observers.py", "_observers"): "registered once at start-up from the settings",
    ("platformsite/metrics.py", "_SERVICE_COLLECTORS"): "registered once at start-up by the services",
    ("trace_app/store/__init__.py", "get_store"): "the stateless store class the settings name",
    ("dbproxy_app/backends/postgresql.py", "_quoted"): "identifiers quoted by a pure function",
    ("dbproxy_app/pause.py", "_paused"): "the collector pause's count of calls in progress",
    ("dbproxy_app/pause.py", "_resume"): "whether the collector ran before the pause",
    ("monitor_app/services/ingest.py", "_scripts"): "a Lua script registered once per Redis client",
    ("config_app/schemas.py", "_metaschemas"): "the published drafts' metaschemas, never change",
}
#: Every cache, and how to put an entry straight into the structure it names.
CACHES: dict[str, Callable[[], None]] = {}
#: Threads registered at import (``discovery-self-registration`` registers when it starts).
THREADS = {
    "db-stalls",
    "events-group-commit",
    "events-live-sender",
    "platform-beat",
    "platform-invalidation",
    "platform-tasks",
    "trace-live-sender",
    "trace-self-export",
}


def fills(name: str):
    def register(fill: Callable[[], None]) -> Callable[[], None]:
        CACHES[name] = fill
        return fill

    return register


@fills("auth.tokens")
def _():
    from auth_app import tokens

    info = tokens.TokenInfo(1, "c", None, "", None, "", frozenset(), time.time() + 60)
    tokens._cache.entries["checksum"] = (info, time.time() + 60)


@fills("auth.policies")
def _():
    from auth_app import selectors
    from auth_app.policy import CompiledPolicy

    selectors._compiled[(1, "version")] = CompiledPolicy([])


@fills("auth.client_secrets")
def _():
    from auth_app import secrets

    secrets._remembered["key"] = time.monotonic() + 60


@fills("auth.signing_keys")
def _():
    from auth_app import keys

    keys._private_keys["kid"] = object()


@fills("auth.client_auth")
def _():
    from auth_app import views

    views._client_auth.entries["key"] = time.time() + 60


@fills("config.resolved")
def _():
    from config_app import selectors

    selectors._local[("orders", "prod")] = (time.monotonic(), object())


@fills("config.ws_resolutions")
def _():
    from config_app import consumers

    consumers._shared[("change", "orders", "prod", False)] = object()


@fills("discovery.services")
def _():
    from discovery_app import selectors

    selectors._local["orders"] = (time.monotonic(), object())


@fills("trace.keep_rules")
def _():
    from trace_app.services import keeping

    keeping._rules.update(at=time.monotonic(), rules={"*": object()})


@fills("trace.names_seen")
def _():
    from trace_app.services import ingest

    ingest._names[("op", "orders", "GET /", "SERVER", "")] = time.monotonic()


@fills("trace.services")
def _():
    from trace_app.services import ingest

    ingest._services.update(at=time.monotonic(), names={"orders"})


@fills("db.catalog")
def _():
    from dbproxy_app import catalog

    catalog._entries["orders"] = object()


@fills("db.pools")
def _():
    from types import SimpleNamespace

    from dbproxy_app.backends import postgresql

    postgresql._pools["key"] = SimpleNamespace(close=lambda timeout=None: None, name="orders")


@fills("discovery.node_meta")
def _():
    from discovery_app.services import common

    common._node_meta["orders-1"] = (10, "orders", time.monotonic() + 60)


@fills("monitor.failing_nodes")
def _():
    from monitor_app import selectors

    selectors._failing["orders"] = (time.monotonic(), frozenset({"orders-2"}))


@fills("monitor.jobs")
def _():
    from monitor_app import hot

    hot._jobs["6b0f3c6e-5a4b-4c2d-9e8f-0a1b2c3d4e5f"] = (time.monotonic(), None)


@fills("events.webhook_filters")
def _():
    from event_app import selectors

    selectors._local_filters = (time.monotonic(), [(1, object())])


@fills("events.source_references")
def _():
    from event_app import cloudevents

    cloudevents.is_uri_reference("/orders")


@fills("auth.lockout_local")
def _():
    from auth_app import lockout

    lockout._local["auth:token-failures:ip:10.0.0.1"] = (1, time.monotonic() + 60)


@fills("monitor.unsure_snapshots")
def _():
    from monitor_app.services import ingest

    ingest._unsure.add(ingest.snapshot_key("orders", "n1", "db"))


@fills("platform.throttle_windows")
def _():
    from platformsite.api import throttling

    throttling._counters.windows["client:c"] = throttling._Window(1)


@fills("platform.redis_clients")
def _():
    from platformsite import cache

    cache._clients[("pid", "server")] = object()


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found.append((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text())))
    return found


def _registrations(tree: ast.Module) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "localstate"
        and node.func.attr.startswith("register_")
    ]


def _names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _module_state(tree: ast.Module) -> set[str]:
    """Module-level names holding data that changes: empty containers, instances of the module's
    own classes (but constants, named in capitals), names functions rebind with ``global``,
    memoized functions."""
    own_classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    state: set[str] = set()
    for node in tree.body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        empty = isinstance(value, ast.Dict | ast.List | ast.Set) and not getattr(
            value, "keys" if isinstance(value, ast.Dict) else "elts"
        )
        built = (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and (
                value.func.id in own_classes
                or value.func.id in {"dict", "set", "list", "defaultdict", "deque"}
            )
        )
        if empty:
            state.update(names)
        elif built:
            state.update(name for name in names if not name.isupper())
        if isinstance(node, ast.FunctionDef) and any(
            "cache" in ast.unparse(decorator) for decorator in node.decorator_list
        ):
            state.add(node.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            state.update(node.names)
    return state


def _covered(tree: ast.Module, calls: list[ast.Call]) -> set[str]:
    """Names a registration reaches: named in the call, or used by a module-level function it names."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    covered: set[str] = set()
    todo = [name for call in calls for name in _names(call)]
    while todo:
        name = todo.pop()
        if name not in covered:
            covered.add(name)
            if name in functions:
                todo.extend(_names(functions[name]))
    return covered


def test_every_module_level_cache_and_thread_is_registered():
    # Given every server module, and what each registration reaches (in its module, or in one
    # that imports the state from it)
    modules = _modules()
    covered: dict[str, set[str]] = {}
    for path, tree in modules:
        reached = _covered(tree, _registrations(tree))
        covered.setdefault(path, set()).update(reached)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                origin = node.module.replace(".", "/") + ".py"
                covered.setdefault(origin, set()).update(a.name for a in node.names if a.name in reached)

    # Then each module-level cache is registered, and each module starting threads registers them
    unregistered = [
        (path, name)
        for path, tree in modules
        for name in sorted(_module_state(tree))
        if name not in covered.get(path, set()) and (path, name) not in NOT_STATE
    ]
    assert unregistered == []
    threads_unregistered = [
        path
        for path, tree in modules
        if re.search(r"\bthreading\.(Thread|Timer)\(", ast.unparse(tree))
        and not any(call.func.attr == "register_thread" for call in _registrations(tree))
    ]
    assert threads_unregistered == []


def test_registry__names_every_cache_and_thread_of_the_server_modules():
    # Given every module that registers something, imported
    for path, tree in _modules():
        if _registrations(tree):
            importlib.import_module(path.removesuffix(".py").replace("/", "."))

    # Then the registry holds exactly the caches and threads known here
    assert sorted(cache.name for cache in localstate.caches()) == sorted(CACHES)
    started_later = {"discovery-self-registration"}
    assert THREADS <= {thread.name for thread in localstate.threads()} <= THREADS | started_later
    assert all(thread.alive() in (True, False) for thread in localstate.threads())


@pytest.mark.parametrize("name", sorted(CACHES))
def test_reset_all__empties_the_structure_each_cache_names(name):
    # Given an entry put straight into the cache's own structure
    CACHES[name]()
    registered = {cache.name: cache for cache in localstate.caches()}[name]
    assert registered.size() == 1

    # When everything is reset
    localstate.reset_all()

    # Then the structure is empty (the registration counts and empties the real one)
    assert registered.size() == 0


def test_reset_all__empties_every_cache_warmed_by_real_calls_and_zeroes_its_counters(
    api_client, client, service_account, django_capture_on_commit_callbacks
):
    # Given caches warmed by real calls: tokens, secrets, keys, policies, documents, node metadata
    from tests.conftest import basic_auth

    caller = api_client("config:read", "discovery:read", "discovery:write", "events:write")
    assert caller.get("/api/v1/config/namespaces/global/resolve").status_code == 200
    node = {"service": "orders", "version": "1.0", "address": "10.0.0.1", "port": 8000}
    with django_capture_on_commit_callbacks(execute=True):
        assert caller.put("/api/v1/discovery/nodes/orders-1/", node, format="json").status_code in (200, 201)
    assert caller.get("/api/v1/discovery/services/orders/").status_code == 200
    assert caller.post("/api/v1/discovery/nodes/orders-1/heartbeat/").status_code == 200
    event = {"type": "order.placed", "source": "/shop", "id": "e-1", "specversion": "1.0"}
    assert caller.post("/api/v1/events/", event, format="json").status_code in (200, 201, 202)
    client_id, secret = service_account("auth:read")
    client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
    client.post("/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION=basic_auth(client_id, secret))
    warm = {cache.name for cache in localstate.caches() if cache.size()}
    assert warm >= {
        "auth.tokens",
        "auth.policies",
        "auth.client_secrets",
        "auth.signing_keys",
        "auth.client_auth",
        "config.resolved",
        "discovery.services",
        "discovery.node_meta",
        "platform.throttle_windows",
    }

    # When everything is reset
    localstate.reset_all()

    # Then no cache holds an entry or a count
    left = [
        (c.name, c.size(), c.hits, c.misses) for c in localstate.caches() if c.size() or c.hits or c.misses
    ]
    assert left == []


def test_warm_reads__count_their_hits_and_misses(api_client):
    # Given a caller reading a config document three times
    reader = api_client("config:read")
    caches = {cache.name: cache for cache in localstate.caches()}
    tokens, documents = caches["auth.tokens"], caches["config.resolved"]

    for _ in range(3):
        assert reader.get("/api/v1/config/namespaces/global/resolve").status_code == 200

    # Then the token and the document were each looked up cold once, then found twice
    assert (tokens.misses, tokens.hits) >= (1, 2)
    assert (documents.misses, documents.hits) >= (1, 2)


def test_self_registration__registers_its_thread_when_it_starts(django_capture_on_commit_callbacks):
    from discovery_app.selfregister import SelfRegistration

    # Given a service registering itself
    with django_capture_on_commit_callbacks(execute=True):
        registration = SelfRegistration(name="config", address="127.0.0.1", port=8001, interval=3600).start()
    try:
        # Then its heartbeat thread is registered, and runs
        threads = {thread.name: thread for thread in localstate.threads()}
        assert threads["discovery-self-registration"].alive()
    finally:
        with django_capture_on_commit_callbacks(execute=True):
            registration.stop()
    registration._thread.join(timeout=5)
    assert not threads["discovery-self-registration"].alive()


def _sample(text: str, metric: str, cache: str) -> float:
    found = re.search(rf'{metric}\{{cache="{re.escape(cache)}",pid="\d+"\}} (\S+)', text)
    assert found, f"{metric} for {cache} missing"
    return float(found.group(1))


def test_metrics__token_cache_hits_increase_with_warm_use(api_client, client):
    # Given a caller whose token was validated once
    reader = api_client("monitor:read")
    assert reader.get("/api/v1/monitor/ping/").status_code == 200
    before = client.get("/metrics").content.decode()

    # When it calls three more times
    for _ in range(3):
        assert reader.get("/api/v1/monitor/ping/").status_code == 200

    # Then the scrape shows the token cache's entries, and three more hits
    after = client.get("/metrics").content.decode()
    assert _sample(after, "platform_local_cache_entries", "auth.tokens") >= 1
    hits = _sample(after, "platform_local_cache_hits_total", "auth.tokens")
    assert hits - _sample(before, "platform_local_cache_hits_total", "auth.tokens") >= 3
    assert _sample(after, "platform_local_cache_misses_total", "auth.tokens") >= 0
    assert re.search(r'platform_local_thread_up\{pid="\d+",thread="platform-invalidation"\} [01]', after)


def test_metrics__multiprocess_mode__reports_the_answering_process_state(api_client, tmp_path, monkeypatch):
    # Given worker files in a multiprocess directory and a warm token in this process
    reader = api_client("monitor:read")
    for _ in range(2):
        reader.get("/api/v1/monitor/ping/")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from platformsite.metrics import exposition

    # When the metrics are exposed the multiprocess way
    text = exposition()[0].decode()

    # Then this process's caches are there, labelled with its pid
    assert _sample(text, "platform_local_cache_hits_total", "auth.tokens") >= 1
    assert _sample(text, "platform_local_cache_entries", "config.resolved") >= 0
