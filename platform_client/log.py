"""Structured logs: one JSON line per event with the service, version, node and the current
OpenTelemetry trace and span ids, on stdout or in a file (for Filebeat / the ELK stack);
warnings and above optionally shipped to the platform's event stream.

```python
from platform_client import log

logger = log.setup("orders", "1.2.0", node="orders-1", file="/var/log/orders.jsonl")
logger.info("order placed", order=7, total=12.5)
# {"event": "order placed", "order": 7, "total": 12.5, "level": "info", "service": "orders",
#  "version": "1.2.0", "node": "orders-1", "timestamp": "...Z", "trace_id": "...", "span_id": "..."}
```

Built on structlog (``pip install "micro-platform-client[log]"``).  ``events=`` takes an
``EventPublisher`` (``Platform.log`` passes its own): each record at ``ship_level`` or above is
also published as a ``log.<level>`` event with the record as its data.  Publishing never blocks
the caller (the publisher buffers) and a record the buffer cannot take is counted in
``log.shipper().dropped``, never silently lost.  stdlib ``logging`` records go through the same
pipeline when ``stdlib=True``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["Shipper", "add_trace_ids", "setup", "shipper"]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50, "exception": 40}


def add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current OpenTelemetry span's ids, when there is one."""
    try:
        from opentelemetry import trace
    except ImportError:
        return event
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with NaN and the infinities spelt as strings (``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``): JSON has no such numbers, and a line holding Python's bare ``NaN`` is one
    that Filebeat, Elasticsearch and the event API refuse. A structure nested deeper than 32
    levels (or holding itself) is written as its ``repr`` from there."""
    if isinstance(value, float):
        return value if math.isfinite(value) else json.dumps(value)
    if isinstance(value, dict | list | tuple) and depth >= 32:
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item, depth + 1) for item in value]
    return value


def _dumps(value: Any, **options: Any) -> str:
    """structlog's serializer: standard JSON, whatever the values."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:  # NaN or an infinity somewhere: rarely, so only then looked for
        return json.dumps(_finite(value), allow_nan=False, **options)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except TypeError:
        return repr(value)
    except ValueError:
        return _finite(value)
    return value


#: What an event's subject (a CloudEvents String) cannot hold, which the platform refuses: control
#: characters, Unicode noncharacters and lone surrogates. A shipped record's subject has them as spaces.
NOT_SUBJECT_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef\ud800-\udfff"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
    + "]"
)


class Shipper:
    """structlog processor publishing records at ``level`` or above to an event publisher."""

    def __init__(self, events: Any, level: str = "warning") -> None:
        self.events = events
        self.level = LEVELS[level]
        self.shipped = 0
        self.dropped = 0

    def __call__(self, _: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = event.get("level", method)
        if LEVELS.get(level, 0) >= self.level:
            data = {key: _jsonable(value) for key, value in event.items() if not key.startswith("_")}
            try:
                subject = NOT_SUBJECT_CHARS.sub(" ", str(event.get("event", "")))[:200]
                self.events.publish(f"log.{level}", data, subject=subject)
                self.shipped += 1
            except Exception:  # a full buffer (BufferFull) or a closed publisher
                self.dropped += 1
        return event


def _level(value: Any, what: str) -> str:
    """A level name in any case (``"WARNING"`` as the standard library spells it), lower-cased."""
    name = value.lower() if isinstance(value, str) else value
    if name not in LEVELS:
        raise ValueError(f"{what} is one of {', '.join(LEVELS)}, not {value!r}")
    return name


def setup(
    service: str,
    version: str = "0.0.0",
    *,
    node: str | None = None,
    file: str | Path | None = None,
    stream: IO[str] | None = None,
    level: str = "info",
    events: Any = None,
    ship_level: str = "warning",
    stdlib: bool = False,
) -> Any:
    """Configure structlog for this process; returns a bound logger."""
    try:
        import structlog
    except ImportError as exc:
        raise ImportError(
            'platform_client.log needs structlog: pip install "micro-platform-client[log]"'
        ) from exc
    level, ship_level = _level(level, "level"), _level(ship_level, "ship_level")
    output: IO[str] = stream or (open(file, "a", buffering=1) if file else sys.stdout)  # noqa: SIM115
    static = {"service": service, "version": version, "node": node or service}

    def add_static(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        for key, value in static.items():
            event.setdefault(key, value)
        return event

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_static,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        structlog.processors.format_exc_info,
    ]
    shipper = Shipper(events, ship_level) if events is not None else None
    if shipper is not None:
        processors.append(shipper)
    structlog.configure(
        processors=[*processors, structlog.processors.JSONRenderer(serializer=_dumps)],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(output),
        cache_logger_on_first_use=False,
    )
    if stdlib:
        handler = logging.StreamHandler(output)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=processors,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(serializer=_dumps),
                ],
            )
        )
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if not getattr(h, "_platform_log", False)]
        handler._platform_log = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(LEVELS[level])
    global _shipper
    _shipper = shipper
    return structlog.get_logger()


_shipper: Shipper | None = None


def shipper() -> Shipper | None:
    """The event shipper of the last :func:`setup` (its ``shipped`` and ``dropped`` counts)."""
    return _shipper
