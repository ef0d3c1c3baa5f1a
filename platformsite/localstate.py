"""The registry of what a process keeps in its own memory: caches, other state and threads.

Every per-process cache registers here once, at import, with a name, how to count its entries
and how to empty it; it counts its own hits and misses on the returned :class:`LocalCache`
(plain attribute increments, no lock: these caches sit on paths measured in microseconds, so
under threads a count may now and then miss one).  State that is not a cache (an epoch) registers
only how to reset it.  Background threads register a way to tell whether they run.

Tests empty everything with :func:`reset_all`; ``/metrics`` reports each cache's entries, hits and
misses and each thread's state (:mod:`platformsite.metrics`), read at scrape time.

    _stats = localstate.register_cache("app.things", size=lambda: len(_things), reset=_things.clear)
    ...
    if found is not None:
        _stats.hits += 1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False, slots=True)
class LocalCache:
    """One registered cache; its owner increments ``hits`` and ``misses``."""

    name: str
    size: Callable[[], int]
    reset: Callable[[], None]
    hits: int = 0
    misses: int = 0


@dataclass(eq=False, slots=True)
class LocalThread:
    """One registered background thread; ``alive()`` says whether it runs in this process."""

    name: str
    alive: Callable[[], bool]


@dataclass
class _Registry:
    caches: dict[str, LocalCache] = field(default_factory=dict)
    states: dict[str, Callable[[], None]] = field(default_factory=dict)
    threads: dict[str, LocalThread] = field(default_factory=dict)


_registry = _Registry()


def register_cache(name: str, *, size: Callable[[], int], reset: Callable[[], None]) -> LocalCache:
    """Register a cache (again under the same name: replaced, e.g. on a module reload)."""
    cache = LocalCache(name, size, reset)
    _registry.caches[name] = cache
    return cache


def register_state(name: str, *, reset: Callable[[], None]) -> None:
    """Register process-local state that is not a cache (reset by :func:`reset_all`, not reported)."""
    _registry.states[name] = reset


def register_thread(name: str, *, alive: Callable[[], bool]) -> None:
    """Register a background thread (again under the same name: replaced)."""
    _registry.threads[name] = LocalThread(name, alive)


def caches() -> list[LocalCache]:
    return list(_registry.caches.values())


def states() -> list[str]:
    return list(_registry.states)


def threads() -> list[LocalThread]:
    return list(_registry.threads.values())


def reset_all() -> None:
    """Empty every registered cache, zero its counters and reset the other state (tests)."""
    for cache in caches():
        cache.reset()
        cache.hits = cache.misses = 0
    for reset in list(_registry.states.values()):
        reset()
