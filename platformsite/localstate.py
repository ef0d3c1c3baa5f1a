"""The registry of what a process keeps in its own memory: caches and background threads.

Every per-process cache registers here once, at import, with a name, how to count its entries
and how to empty it; it counts its own hits and misses on the returned :class:`LocalCache`
(plain integer increments: these caches sit on paths measured in microseconds).  Background
threads register a way to tell whether they run.  Tests empty everything with
:func:`reset_all`; ``/metrics`` reports each cache's entries, hits and misses and each thread's
state (:mod:`platformsite.metrics`), read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class LocalCache:
    """One registered cache; its owner increments ``hits`` and ``misses``."""

    name: str
    size: Callable[[], int]
    reset: Callable[[], None]
    hits: int = 0
    misses: int = 0


@dataclass(eq=False)
class LocalThread:
    name: str
    alive: Callable[[], bool]


@dataclass
class _Registry:
    caches: dict[str, LocalCache] = field(default_factory=dict)
    threads: dict[str, LocalThread] = field(default_factory=dict)


_registry = _Registry()


def register_cache(name: str, *, size: Callable[[], int], reset: Callable[[], None]) -> LocalCache:
    """Register a cache (again under the same name: replaced, e.g. on a module reload)."""
    cache = LocalCache(name, size, reset)
    _registry.caches[name] = cache
    return cache


def register_thread(name: str, *, alive: Callable[[], bool]) -> None:
    _registry.threads[name] = LocalThread(name, alive)


def caches() -> list[LocalCache]:
    return list(_registry.caches.values())


def threads() -> list[LocalThread]:
    return list(_registry.threads.values())


def reset_all() -> None:
    """Empty every registered cache and zero its counters (tests)."""
    for cache in caches():
        cache.reset()
        cache.hits = cache.misses = 0
