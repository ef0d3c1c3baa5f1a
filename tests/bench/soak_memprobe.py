"""Where a WSGI worker's memory is: the settings module and URLconf of ``tests.bench.soak_memory``.

The settings and URLs of ``make bench``'s platform server (``plainview.py``), plus
``GET /bench/memory/`` (no auth: this module is only ever a benchmark's settings) answering,
for the worker that serves it, its resident memory and what holds it:

- ``python``: blocks alive in CPython's allocator (``sys.getallocatedblocks``), objects the
  collector tracks, and pymalloc's arenas (``sys._debugmallocstats``: arenas mapped, bytes in
  used blocks, bytes free in them);
- ``malloc``: glibc's ``mallinfo2`` (bytes in use, bytes free but held by the arenas, mmapped);
- with ``?trim=1``: the same after ``gc.collect()`` and glibc's ``malloc_trim(0)`` (which hands
  the free pages of every arena back to the kernel): how much of the RSS was memory the
  process no longer used.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import threading

from django.http import HttpRequest, HttpResponse
from django.urls import path

from platformsite.settings import *  # noqa: F403  (the platform's settings, unchanged)

ROOT_URLCONF = __name__


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
        )
    ] + [("keepcost", ctypes.c_size_t)]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = MallInfo2
_lock = threading.Lock()
MIB = 1024 * 1024


def _rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _pymalloc() -> dict[str, float]:
    """pymalloc's own figures, from ``sys._debugmallocstats`` (which writes to the C stderr)."""
    with tempfile.TemporaryFile(mode="w+") as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()

    def number(label: str) -> int:
        match = re.search(rf"^# {re.escape(label)}\s*=\s*([\d,]+)", text, re.MULTILINE)
        return int(match.group(1).replace(",", "")) if match else -1

    arenas = number("arenas allocated current") * 1024 * 1024  # 1 MiB arenas (CPython 3.10+)
    used, available = number("bytes in allocated blocks"), number("bytes in available blocks")
    return {
        "arenas_mib": round(arenas / MIB, 1),
        "used_blocks_mib": round(used / MIB, 1),
        "free_blocks_mib": round(available / MIB, 1),  # free blocks in pools in use
        "empty_pools_mib": round((arenas - used - available) / MIB, 1),  # free pools, headers, waste
    }


def _snapshot() -> dict[str, object]:
    info = _libc.mallinfo2()
    return {
        "rss_mib": round(_rss_mib(), 1),
        "python": {
            "allocated_blocks": sys.getallocatedblocks(),
            "gc_tracked": len(gc.get_objects()),
            "gc_frozen": gc.get_freeze_count(),
            "pymalloc": _pymalloc(),
        },
        "malloc": {
            "arena_mib": round(info.arena / MIB, 1),  # sbrk'd and arena heaps, all arenas
            "in_use_mib": round(info.uordblks / MIB, 1),
            "free_held_mib": round(info.fordblks / MIB, 1),
            "mmapped_mib": round(info.hblkhd / MIB, 1),
            "top_releasable_mib": round(info.keepcost / MIB, 1),
        },
        "threads": threading.active_count(),
    }


def memory(request: HttpRequest) -> HttpResponse:
    with _lock:
        figures: dict[str, object] = {"pid": os.getpid(), "before": _snapshot()}
        if request.GET.get("trim"):
            gc.collect()
            figures["after_collect_rss_mib"] = round(_rss_mib(), 1)
            _libc.malloc_trim(0)
            figures["after_trim"] = _snapshot()
    return HttpResponse(json.dumps(figures), content_type="application/json")


def _urlpatterns() -> list:
    from tests.bench.plainview import _urlpatterns as bench_urlpatterns  # the platform's, plus the plain view

    return [*bench_urlpatterns(), path("bench/memory/", memory)]


def __getattr__(name: str) -> list:
    """``urlpatterns``, built when Django first asks (this module is the settings too)."""
    if name == "urlpatterns":
        globals()["urlpatterns"] = patterns = _urlpatterns()
        return patterns
    raise AttributeError(name)
