"""Functions told about every HTTP request the platform answers, on the full Django stack and on
the hot path alike (``RequestContextMiddleware`` and ``HotPath`` call :func:`notify`).

A service registers one at start-up (trace's self-tracing does, when ``PLATFORM_SELF_TRACE`` is
on).  With none registered a request pays one truth test.  An observer runs in the request's
thread after the answer is made: it must be quick (queue, then return) and never raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Observed:
    method: str
    path: str
    route: str  # the URL pattern ("unmatched" when none)
    status: int
    started: float  # wall clock, seconds since the epoch
    duration: float  # seconds
    meta: Mapping[str, Any]  # the WSGI environ / request.META (headers as HTTP_*)


_observers: list[Callable[[Observed], None]] = []


def add(observer: Callable[[Observed], None]) -> None:
    if observer not in _observers:
        _observers.append(observer)


def remove(observer: Callable[[Observed], None]) -> None:
    if observer in _observers:
        _observers.remove(observer)


def active() -> bool:
    return bool(_observers)


def notify(observed: Observed) -> None:
    for observer in _observers:
        try:
            observer(observed)
        except Exception:  # an observer must never break the answer
            log.exception("request observer %r failed", observer)
