"""The span store's interface: what ingest writes and what every read needs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

#: A span row's columns, in the order a store writes them (``trace_app.models.Span`` but ``id``).
COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "kind",
    "service",
    "remote_service",
    "timestamp",
    "duration",
    "error",
    "shared",
    "debug",
    "tags",
    "annotations",
    "links",
    "resource",
    "scope",
    "local_endpoint",
    "remote_endpoint",
)
JSON_COLUMNS = frozenset(
    {"tags", "annotations", "links", "resource", "scope", "local_endpoint", "remote_endpoint"}
)


@dataclass(frozen=True)
class TraceQuery:
    """A search for traces: every condition holds for one span of each trace found; the newest
    ``limit`` traces are answered (conditions apply before the limit)."""

    start: int  # µs since the epoch, included
    end: int  # µs, included
    limit: int = 20
    service: str = ""
    remote_service: str = ""
    operation: str = ""
    operation_any_case: bool = False  # ``operation`` matches names in any case (Zipkin's spanName)
    #: ``(key, value)`` terms; one span must hold them all (a key given two values matches none)
    tags: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()
    min_duration: int | None = None  # µs
    max_duration: int | None = None
    error_only: bool = False


@dataclass(frozen=True)
class EdgeCount:
    minute: int
    parent: str
    child: str
    bucket: int
    calls: int
    errors: int
    duration_sum: int


class SpanStore(Protocol):
    def write(self, spans: list[dict[str, Any]]) -> None:
        """Store span rows (one round trip per batch where the database allows)."""

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        """The ids of the newest traces with a span matching ``query``, newest first."""

    def spans(self, trace_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Every stored span of these traces (any time), as rows."""

    def halves(self, trace_ids: Iterable[str], span_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Stored spans of these traces whose span id or parent id is one of ``span_ids``
        (``trace_id, span_id, parent_id, kind, service, shared, duration, error``)."""

    def known_traces(self, trace_ids: Iterable[str]) -> set[str]:
        """Which of these traces have spans stored."""

    def add_edges(self, edges: list[EdgeCount]) -> None:
        """Add calls to the service graph's per-minute counters."""

    def edges(self, first_minute: int, last_minute: int) -> list[EdgeCount]:
        """Per-minute counters between these minutes (included), summed over minutes (minute 0)."""

    def operations(self) -> list[dict[str, Any]]:
        """Every (service, name, kind, remote_service) seen, with ``last_seen``."""

    def note_operations(self, operations: list[tuple[str, str, str, str]], seen: int) -> None:
        """Record (service, name, kind, remote_service) as seen at ``seen`` (µs)."""

    def note_tag_values(self, values: list[tuple[str, str]], seen: int) -> None:
        """Record (key, value) pairs of the autocomplete keys as seen at ``seen``."""

    def tag_values(self, key: str) -> list[str]:
        """Values seen for an autocomplete key, sorted."""

    def expire(self, before: int, services: dict[str, int]) -> int:
        """Delete spans older than ``before`` (µs), and those of ``services`` older than their
        own cut-off; the number of spans deleted (where known)."""
