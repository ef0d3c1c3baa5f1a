"""The smart client: pick a node of a service with the router's weights and local decisions.

```python
from platform_client import PlatformSession
from platform_client.router import Router

router = Router(PlatformSession(), caller="checkout")
orders = router.client("orders")  # wraps httpx (or requests): select, call, record, retry
response = orders.get("/orders/42", labels={"beta": "true"})

node = router.select("orders")  # or pick and report yourself
...
router.mark(node, ok=True, latency_ms=12.5)
```

**Picking** is weighted power of two choices: two nodes are drawn by the router's weights and
the cheaper one is taken, cost = EWMA latency x (calls in flight + 1).  A failure counts as at
least ``failure_penalty_ms`` (5 s) in the EWMA; an answer with ``Retry-After`` (429/503) keeps
the node out of picks for that long.  Each node has a circuit breaker (Hystrix's defaults: 20
calls in 10 s, 50% failures, open 5 s, one trial).  A pick never fails while the service has a
node: when every node is refused (breakers open, backing off), the cheapest is taken anyway.

**Routes** come from ``GET /api/v1/router/routes/<service>/`` and are used until they expire
(``ttl``), refreshed in the background at half of it, and at once on each change ``/ws/router/``
announces with ``Router(..., watch=True)``.  When the router cannot be reached, or
its routes expired, the selector routes from the discovery cache (every passing node at full
weight; the labels and rules last received stay applied) with the same local decisions, and
keeps serving.  **Rate limits** set centrally for (service, caller) are token buckets here: a
refused call raises :class:`RateLimited` (the wrapped client answers 429 with ``Retry-After``).
**Retries** (connection failures; 5xx and timeouts for idempotent methods) go to another node
within a budget of 20% of the calls (at least 3 per 10 s).  **Stats** of every call are counted
per window (:mod:`platform_client.router_stats`) and published in the background.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from bisect import bisect
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from platform_client import router_rules
from platform_client.discovery import Discovery
from platform_client.router_local import Breaker, RetryBudget, TokenBucket
from platform_client.router_stats import StatsRecorder
from platform_client.router_watch import RouteWatcher
from platform_client.session import PlatformError, PlatformSession

log = logging.getLogger(__name__)

API = "/api/v1/router"
#: Seconds over which a node's latency EWMA forgets.
DECAY_SECONDS = 10.0
FAILURE_PENALTY_MS = 5000.0
#: Windows kept while the router cannot take them (the newest).
MAX_PENDING_WINDOWS = 5000
#: Pools kept per service table, one per (version, request labels) asked for.
MAX_POOLS = 1000


class NoRoute(PlatformError):
    """The service has no node to call (unknown to the router and to discovery)."""

    def __init__(self, service: str, why: str = "") -> None:
        super().__init__(503, "no_route", f"No node of {service!r} to call{': ' + why if why else ''}.")


class RateLimited(PlatformError):
    """The caller's token bucket for the service is empty: retry after ``retry_after`` seconds."""

    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(
            429,
            "rate_limited",
            f"Rate limit for {service!r} reached.",
            {"retry_after": retry_after},
            retry_after=retry_after,
        )


class Node:
    """A node as the selector knows it: where it is, its weight, and its local state."""

    __slots__ = (
        "address",
        "backoff_until",
        "breaker",
        "ewma",
        "id",
        "inflight",
        "labels",
        "port",
        "service",
        "stamp",
        "version",
        "weight",
    )  # fmt: skip

    def __init__(self, service: str, id: str) -> None:
        self.service = service
        self.id = id
        self.address = ""
        self.port = 0
        self.version = ""
        self.labels: dict[str, str] = {}
        self.weight = 100
        self.ewma = 0.0
        self.stamp = 0.0
        self.inflight = 0
        self.backoff_until = 0.0
        self.breaker = Breaker()

    def cost(self, now: float) -> float:
        decayed = self.ewma * math.exp((self.stamp - now) / DECAY_SECONDS) if self.ewma else 0.0
        return (decayed + 1.0) * (self.inflight + 1)

    def available(self, now: float) -> bool:
        return now >= self.backoff_until and self.breaker.available(now)

    def observe(self, latency_ms: float, now: float) -> None:
        """Peak EWMA: a slower call is taken at once, faster ones blend in over DECAY_SECONDS."""
        if latency_ms > self.ewma:
            self.ewma = latency_ms
        else:
            keep = math.exp((self.stamp - now) / DECAY_SECONDS) if now > self.stamp else 1.0
            keep = min(keep, 0.9)  # each call counts for at least a tenth
            self.ewma = self.ewma * keep + latency_ms * (1 - keep)
        self.stamp = now

    def __repr__(self) -> str:
        return f"Node({self.service}/{self.id} {self.address}:{self.port} w={self.weight})"


class Pool:
    """Nodes to pick from, with cumulative weights (ejected nodes left out unless all are)."""

    __slots__ = ("cumulative", "nodes", "total")

    def __init__(self, nodes: list[Node]) -> None:
        weighted = [node for node in nodes if node.weight > 0]
        weights = [node.weight for node in weighted] if weighted else [1] * len(nodes)
        self.nodes = weighted or list(nodes)
        total, cumulative = 0, []
        for weight in weights:
            total += weight
            cumulative.append(total)
        self.cumulative = cumulative
        self.total = total

    def pick(self, now: float, rand: Callable[[], float], exclude: Any = ()) -> Node:
        nodes, cumulative, total = self.nodes, self.cumulative, self.total
        a = nodes[bisect(cumulative, rand() * total)]
        b = nodes[bisect(cumulative, rand() * total)]
        if exclude and (a.id in exclude or b.id in exclude):
            others = [node for node in nodes if node.id not in exclude]
            if others:
                return Pool(others).pick(now, rand)
        a_ok, b_ok = a.available(now), b.available(now)
        if a_ok and b_ok:
            return a if a.cost(now) <= b.cost(now) else b
        if a_ok or b_ok:
            return a if a_ok else b
        usable = [node for node in nodes if node.available(now)]
        if usable:
            return Pool(usable).pick(now, rand)
        return min(nodes, key=lambda node: (node.cost(now), node.id))  # everything refused: never fail a pick


class Table:
    """One service's routes as picked from: pools per version and per request labels."""

    def __init__(self, nodes: list[Node], rules: list[dict[str, Any]], source: str, expires: float) -> None:
        self.nodes = nodes
        self.rules = rules
        self.source = source  # "router" or "discovery"
        self.expires = expires
        self.default = Pool(nodes)
        self.versions = {node.version for node in nodes if node.weight > 0}
        self._pools: dict[tuple, Pool] = {}

    def pool(self, version: str | None, labels: Mapping[str, str] | None) -> Pool:
        if version is None and not labels:
            return self.default
        key = (version, tuple(sorted(labels.items())) if labels else ())
        pool = self._pools.get(key)
        if pool is None:
            nodes = [n for n in self.nodes if version is None or n.version == version] or self.nodes
            if labels:
                nodes = list(router_rules.narrow(nodes, labels, lambda node: node.labels))
            if len(self._pools) >= MAX_POOLS:  # requests with ever-new labels: start over
                self._pools.clear()
            pool = self._pools[key] = Pool(nodes)
        return pool


class Target:
    """A service being called: its table, nodes (state kept across refreshes), bucket, budget."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.table: Table | None = None
        self.nodes: dict[str, Node] = {}
        #: Why the last refresh found no routes (the router's and discovery's errors), for NoRoute.
        self.why = ""
        self.bucket: TokenBucket | None = None
        self.limit: tuple[float, int] | None = None
        self.budget = RetryBudget()
        self.refresh_at = 0.0
        self.refreshing = False

    def node(self, node_id: str) -> Node:
        found = self.nodes.get(node_id)
        if found is None:
            found = self.nodes[node_id] = Node(self.service, node_id)
        return found


class Router:
    """Picks nodes for calls to services, from the router's routes or the discovery cache."""

    def __init__(
        self,
        session: PlatformSession,
        *,
        caller: str | None = None,
        discovery: Discovery | None = None,
        window_seconds: float = 10.0,
        failure_penalty_ms: float = FAILURE_PENALTY_MS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] | None = None,
        publish: bool = True,
        watch: bool = False,
    ) -> None:
        self.session = session
        self.caller = caller
        self.discovery = discovery if discovery is not None else Discovery(session)
        self.failure_penalty_ms = failure_penalty_ms
        self.clock = clock
        self.wall_clock = wall_clock
        self.rand = rand or random.Random().random
        self.publish = publish
        self.recorder = StatsRecorder(window_seconds)
        self._targets: dict[str, Target] = {}
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: With ``watch``, routes are refreshed as ``/ws/router/`` announces changes.
        self.watcher = RouteWatcher(self) if watch else None

    # --- picking ---------------------------------------------------------------------------------

    def select(
        self,
        service: str,
        *,
        labels: Mapping[str, str] | None = None,
        version: str | None = None,
        exclude: Any = (),
        endpoint: str = "",
    ) -> Node:
        """A node to call now (its in-flight count taken: report the call with :meth:`mark`)."""
        target = self._targets.get(service) or self._target(service)
        now = self.clock()
        if now >= target.refresh_at:
            self._refresh_soon(target, now)
        table = target.table
        if table is None or not table.nodes:
            raise NoRoute(service, target.why)
        bucket = target.bucket
        if bucket is not None and not bucket.take(now):
            self.recorder.drop(service, "", endpoint, now=self.wall_clock())
            raise RateLimited(service, bucket.retry_after())
        if labels and table.rules and version is None:
            rules = router_rules.matching_rules(table.rules, labels)
            if rules:
                split = router_rules.version_split(rules, table.versions)
                version = router_rules.choose_version(split, self.rand() * 100)
        pool = table.pool(version, labels) if (version is not None or labels) else table.default
        node = pool.pick(now, self.rand, exclude)
        node.inflight += 1
        node.breaker.picked(now)
        target.budget.call(now)
        return node

    def mark(
        self,
        node: Node,
        *,
        ok: bool,
        latency_ms: float,
        timeout: bool = False,
        retry_after: float | None = None,
        endpoint: str = "",
    ) -> None:
        """Report a call made to ``node``: its latency EWMA, breaker, backoff and stats."""
        now = self.clock()
        node.inflight = max(0, node.inflight - 1)
        node.observe(latency_ms if ok else max(latency_ms, self.failure_penalty_ms), now)
        node.breaker.record(ok, now)
        if retry_after:
            node.backoff_until = max(node.backoff_until, now + retry_after)
        self.recorder.record(
            node.service,
            node.id,
            endpoint,
            ok=ok,
            latency_ms=latency_ms,
            now=self.wall_clock(),
            timeout=timeout,
        )
        if self.publish and self._thread is None:
            self._start_publisher()

    def retry_allowed(self, service: str) -> bool:
        target = self._targets.get(service)
        return target is not None and target.budget.try_retry(self.clock())

    def client(self, service: str, http: Any = None, **options: Any) -> RoutedClient:
        """An HTTP client for ``service`` (httpx.Client by default, or a requests.Session)."""
        from platform_client.router_client import RoutedClient

        return RoutedClient(self, service, http, **options)

    def source(self, service: str) -> str | None:
        """Where the service's current routes came from: "router", "discovery" or None."""
        target = self._targets.get(service)
        return target.table.source if target and target.table else None

    # --- routes ------------------------------------------------------------------------------------

    def _target(self, service: str) -> Target:
        with self._lock:
            target = self._targets.get(service)
            if target is None:
                target = Target(service)
                self.refresh(target)
                self._targets[service] = target
                if self.watcher is not None:
                    self.watcher.watch(service)
            return target

    def refresh_service(self, service: str) -> None:
        """Fetch a called service's routes again now (the watcher does on each change)."""
        target = self._targets.get(service)
        if target is not None:
            self._refresh_quietly(target)

    def _refresh_soon(self, target: Target, now: float) -> None:
        with self._lock:
            if target.refreshing:
                return
            target.refreshing = True
            target.refresh_at = now + 1.0  # at most one attempt a second
        threading.Thread(
            target=self._refresh_quietly, args=(target,), daemon=True, name="router-refresh"
        ).start()

    def _refresh_quietly(self, target: Target) -> None:
        try:
            self.refresh(target)
        except Exception:  # never let a refresh failure reach a caller: the old table serves
            log.exception("router: refreshing the routes of %s failed", target.service)
        finally:
            target.refreshing = False

    def refresh(self, target: Target) -> None:
        """Fetch the service's routes; when that fails, keep unexpired routes or use discovery."""
        now = self.clock()
        try:
            params = {"caller": self.caller} if self.caller else {}
            document = self.session.call("GET", f"{API}/routes/{target.service}/", params=params)
        except (PlatformError, httpx.HTTPError, RuntimeError, ValueError) as exc:
            log.info("router: routes of %s unavailable (%s)", target.service, exc)
            target.why = f"the router's routes: {exc}"
            if target.table is not None and target.table.source == "router" and now < target.table.expires:
                target.refresh_at = now + 1.0
                return
            self._from_discovery(target, now)
            return
        ttl = float(document.get("ttl", 30))
        nodes = []
        for version in document["versions"]:
            for entry in version["nodes"]:
                node = target.node(entry["id"])
                node.address, node.port, node.version = entry["address"], entry["port"], version["version"]
                node.labels = {**entry.get("metadata", {}), **entry.get("labels", {})}
                node.weight = int(entry["weight"])
                nodes.append(node)
        limit = document.get("rate_limit")
        self._set_limit(target, (float(limit["rate"]), int(limit["burst"])) if limit else None, now)
        target.table = Table(nodes, list(document.get("rules", [])), "router", now + ttl)
        target.why = ""
        target.nodes = {node.id: node for node in nodes}
        target.refresh_at = now + ttl / 2

    def _from_discovery(self, target: Target, now: float) -> None:
        try:
            document = self.discovery.get_service(target.service)
        except (PlatformError, httpx.HTTPError, RuntimeError) as exc:
            log.info("router: discovery has no %s either (%s)", target.service, exc)
            target.why = "; ".join(filter(None, (target.why, f"discovery: {exc}")))
            target.refresh_at = now + 1.0
            return
        nodes = []
        for version in document["versions"]:
            for entry in version["nodes"]:
                if entry.get("status", "passing") != "passing":
                    continue
                node = target.node(entry["id"])
                node.address, node.port, node.version = entry["address"], entry["port"], version["version"]
                kept = {k: v for k, v in node.labels.items() if k not in entry.get("metadata", {})}
                node.labels = {**entry.get("metadata", {}), **kept}
                node.weight = 100
                nodes.append(node)
        rules = target.table.rules if target.table is not None else []
        target.why = "" if nodes else "; ".join(filter(None, (target.why, "discovery: no passing node")))
        target.table = Table(nodes, rules, "discovery", float("inf"))
        target.nodes = {node.id: node for node in nodes}
        target.refresh_at = now + 1.0

    def _set_limit(self, target: Target, limit: tuple[float, int] | None, now: float) -> None:
        if limit != target.limit:
            target.limit = limit
            target.bucket = TokenBucket(limit[0], limit[1], now) if limit else None

    # --- stats -------------------------------------------------------------------------------------

    def _start_publisher(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._publish_loop, daemon=True, name="router-stats")
        self._thread.start()

    def _publish_loop(self) -> None:
        while not self._stop.wait(self._until_window_closes()):
            self.flush()

    def _until_window_closes(self) -> float:
        """Seconds until just after the running window closes, so each window is sent as soon as
        it is complete (not up to a window later) and a fleet's callers spread over a second."""
        window = self.recorder.window_seconds
        return window - self.wall_clock() % window + random.uniform(0.1, 1.0)

    def flush(self, *, everything: bool = False, timeout: float | None = None) -> int:
        """Send the closed windows (all of them with ``everything``); kept for later on failure.
        ``timeout``: how long to wait for the platform (default: the session's own timeout)."""
        windows = self.recorder.closed(self.wall_clock(), everything=everything)
        with self._lock:
            batch = (self._pending + windows)[-MAX_PENDING_WINDOWS:]  # the newest are kept
            self._pending = []
        if not batch:
            return 0
        body: dict[str, Any] = {"windows": batch}
        if self.caller:
            body["caller"] = self.caller
        waiting = {} if timeout is None else {"timeout": timeout}
        try:
            self.session.call("POST", f"{API}/stats/", json=body, **waiting)
        except PlatformError as exc:
            if exc.status >= 500 or exc.status == 429:
                self._keep(batch)
            else:  # refused (unknown service, bad window): sending it again would not help
                log.warning("router: stats refused: %s", exc)
            return 0
        except (httpx.HTTPError, RuntimeError) as exc:
            log.info("router: stats not sent (%s); kept for the next round", exc)
            self._keep(batch)
            return 0
        return len(batch)

    def _keep(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending = (batch + self._pending)[-MAX_PENDING_WINDOWS:]

    def close(self, timeout: float = 10.0) -> None:
        """Stop, and send the stats not sent yet, waiting ``timeout`` seconds for the platform at
        most (``Platform.close`` gives it what its other parts left)."""
        self._stop.set()
        if self.watcher is not None:
            self.watcher.close()
        if self.publish:
            try:
                self.flush(everything=True, timeout=timeout)
            except Exception:  # closing must not raise
                log.exception("router: last stats flush failed")


from platform_client.router_client import RoutedClient  # noqa: E402  (re-exported)

__all__ = ["NoRoute", "Node", "RateLimited", "RoutedClient", "Router"]
