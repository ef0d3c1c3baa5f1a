"""Platform events from a service: publish in background batches, search, subscribe over a websocket.

::

    from platform_client.event import EventPublisher, subscribe

    publisher = EventPublisher(session, source="/billing")
    publisher.publish("invoice.paid", {"invoice": 42}, subject="invoices/42")
    publisher.flush()  # optional: wait until the platform has stored them

    sub = subscribe(session, lambda event: print(event["type"]), types=["invoice.*"])
    ...
    sub.stop()

Publishing never blocks on the network: events go into a bounded local buffer that a background
thread sends in CloudEvents batches.  While the platform is unreachable (or answers 5xx/429) the
thread retries with backoff and jitter (never sooner than a ``Retry-After`` the platform sent, up to
``retry_max``) and the buffer holds the events; when the buffer is full,
``publish`` raises :class:`BufferFull`, or calls ``on_drop(events, reason)`` if you gave one.
Nothing is dropped silently: a batch the platform refuses (4xx) goes to ``on_drop`` too (or is
logged as an error without one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from platform_client._backoff import Backoff
from platform_client._checks import seconds
from platform_client.session import WEBSOCKET_LOG, PlatformError, PlatformSession, retry_after_seconds

__all__ = ["BufferFull", "EventPublisher", "Subscription", "search", "subscribe"]

log = logging.getLogger(__name__)
#: Websocket close codes of a refused subscription (unauthenticated, not allowed).
REFUSED_CODES = (4401, 4403)
EVENTS = "/api/v1/events/"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"

DropCallback = Callable[[list[dict[str, Any]], str], None]


#: opentelemetry.trace once looked up (None: not yet; False: not installed, the SDK works without it).
_otel: Any = None


def current_traceparent() -> str:
    """The current OpenTelemetry span as a W3C ``traceparent``, or "" (no span, or no OpenTelemetry)."""
    global _otel
    if _otel is None:
        try:
            from opentelemetry import trace as otel_trace
        except ImportError:
            otel_trace = False
        _otel = otel_trace
    if _otel is False:
        return ""
    context = _otel.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


class BufferFull(Exception):
    """The local buffer holds ``max_buffer`` events not yet accepted by the platform."""


class EventPublisher:
    """Publishes events in batches from a background thread; see the module documentation."""

    def __init__(
        self,
        session: PlatformSession,
        *,
        source: str,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_buffer: int = 10_000,
        on_drop: DropCallback | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        for name, count in (("batch_size", batch_size), ("max_buffer", max_buffer)):
            if type(count) is not int or count < 1:
                raise ValueError(f"{name} is a whole number of events, at least 1, not {count!r}")
        self.session = session
        self.source = source
        self.batch_size = batch_size
        self.flush_interval = seconds(flush_interval, "flush_interval")
        self.max_buffer = max_buffer
        self.on_drop = on_drop
        # 0 would retry an unreachable platform without a pause: the thread would spin
        self.retry_initial = seconds(retry_initial, "retry_initial")
        self.retry_max = max(seconds(retry_max, "retry_max"), self.retry_initial)
        self._buffer: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._closed = False
        #: Set by close(): cuts a retry's backoff short, so the thread stops when close() returns.
        self._closing = threading.Event()
        self.sent = 0
        #: Events the platform refused (each handed to ``on_drop(events, "rejected")``).
        self.rejected = 0
        self.last_error: str | None = None
        #: The last refusal's ``Retry-After``, in seconds: the next try waits at least that long.
        self._retry_after: float | None = None
        self._thread = threading.Thread(target=self._run, name="platform-events", daemon=True)
        self._thread.start()

    # -- the caller's side ------------------------------------------------------------------------------

    def publish(
        self,
        type: str,
        data: Any = None,
        *,
        subject: str = "",
        id: str | None = None,
        time: datetime | None = None,
        root_id: str = "",
        traceparent: str = "",
        source: str | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> str:
        """Queue one event; returns its CloudEvents id (generated unless given). ``traceparent``
        defaults to the current OpenTelemetry span's, so the event links to the trace it came from."""
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": id or uuid.uuid4().hex,
            "source": source or self.source,
            "type": type,
            "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        }
        if subject:
            event["subject"] = subject
        if root_id:
            event["rootid"] = root_id
        traceparent = traceparent or current_traceparent()
        if traceparent:
            event["traceparent"] = traceparent
        event.update(extensions or {})
        if data is not None:
            event["datacontenttype"] = "application/json"
            event["data"] = data
        with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            if len(self._buffer) + self._in_flight >= self.max_buffer:
                full = True
            else:
                full = False
                self._buffer.append(event)
                if len(self._buffer) >= self.batch_size:
                    self._wake.set()
        if full:
            if self.on_drop is None:
                raise BufferFull(f"{self.max_buffer} events wait for the platform; not queued: {event['id']}")
            self.on_drop([event], "buffer_full")
        return event["id"]

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until no event waits; True if all were stored, False if ``timeout`` passed or the
        platform refused some meanwhile (``rejected``, ``on_drop``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            rejected = self.rejected
            while self._buffer or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining if remaining is not None else 0.5)
                self._wake.set()
            return self.rejected == rejected

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, then stop the thread, in ``timeout`` at most (None: flush for ever, then wait 5 s
        for the thread), and at least 0.5 s for a thread that only has to notice; returns whether
        everything was stored."""
        deadline = None if timeout is None else time.monotonic() + timeout
        flushed = self.flush(timeout)
        with self._lock:
            self._closed = True
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=5 if deadline is None else max(deadline - time.monotonic(), 0.5))
        return flushed

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the background thread ----------------------------------------------------------------------------

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._in_flight = len(batch)
            return batch

    def _done(self, batch: list[dict[str, Any]], *, requeue: bool) -> None:
        with self._lock:
            if requeue:
                self._buffer.extendleft(reversed(batch))
            self._in_flight = 0
            self._idle.notify_all()

    def _run(self) -> None:
        try:
            self._send_until_closed()
        finally:  # closed with events the platform never took: say so, never lose them silently
            with self._lock:
                left = list(self._buffer)
                self._buffer.clear()
                self._in_flight = 0
                self._idle.notify_all()
            if left:
                self._report(left, "closed")

    def _send_until_closed(self) -> None:
        backoff = Backoff(self.retry_initial, self.retry_max)
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while True:
                with self._lock:
                    if self._closed and not self._buffer:
                        return
                batch = self._take()
                if not batch:
                    break
                outcome = self._send(batch)
                if outcome == "retry":
                    self._done(batch, requeue=True)
                    pause = backoff.next(self._retry_after)
                    self._retry_after = None
                    if self._closing.wait(pause):  # closed: what is left is reported as such
                        return
                    continue
                backoff.reset()
                if outcome == "rejected":
                    # The platform names the failing events of a refused batch: only they are
                    # dropped, the others go out again with the next batch.
                    failing = self._failing
                    bad = [e for i, e in enumerate(batch) if not failing or i in failing]
                    good = [e for i, e in enumerate(batch) if failing and i not in failing]
                    with self._lock:
                        self.rejected += len(bad)
                    self._report(bad, "rejected")
                    self._done(good, requeue=True)
                    continue
                self._done(batch, requeue=False)

    def _send(self, batch: list[dict[str, Any]]) -> str:
        self._failing: set[int] = set()  # of a rejected batch, when the platform names them
        try:
            body = _encode(batch)
        except (TypeError, ValueError) as exc:  # a reference cycle, NaN: never sendable
            self.last_error = f"cannot encode the batch: {exc}"
            self._failing = {index for index, event in enumerate(batch) if not _encodable(event)}
            return "rejected"  # only those events: the others go out with the next batch
        try:
            response = self.session.post(EVENTS, content=body, headers={"content-type": BATCH_MEDIA_TYPE})
        except (httpx.HTTPError, PlatformError, OSError) as exc:  # the platform is down: keep them
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "retry"
        except Exception as exc:  # the session itself failed (closed, a broken token answer): keep them
            log.exception("events: sending a batch failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "retry"
        if response.status_code in (408, 429) or response.status_code >= 500:
            self.last_error = f"HTTP {response.status_code}"
            self._retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            return "retry"
        if response.status_code >= 400:
            error = PlatformError.from_response(response)
            self.last_error = str(error)
            errors = error.details.get("errors") if isinstance(error.details, dict) else None
            indexes = {e.get("index") for e in errors or () if isinstance(e, dict)}
            self._failing = {i for i in indexes if isinstance(i, int) and 0 <= i < len(batch)}
            return "rejected"
        self.sent += len(batch)
        return "sent"

    def _report(self, batch: list[dict[str, Any]], reason: str) -> None:
        if self.on_drop is not None:
            try:
                self.on_drop(batch, reason)
            except Exception:
                log.exception("on_drop failed")
        elif reason == "closed":
            log.error(
                "events: %d event(s) not delivered before the publisher closed (last error: %s)",
                len(batch),
                self.last_error,
            )
        else:
            log.error("platform refused %d event(s): %s", len(batch), self.last_error)


def _encode(events: Any) -> bytes:
    """Standard JSON (``allow_nan=False``: the platform, as JSON, has no NaN or infinities)."""
    return json.dumps(events, separators=(",", ":"), default=str, allow_nan=False).encode()


def _encodable(event: dict[str, Any]) -> bool:
    try:
        _encode(event)
    except (TypeError, ValueError):
        return False
    return True


def publish_now(session: PlatformSession, events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Publish CloudEvents (dicts) synchronously in one batch; returns the platform's answer."""
    body = _encode(list(events))  # ValueError: a value JSON cannot hold
    response = session.post(EVENTS, content=body, headers={"content-type": BATCH_MEDIA_TYPE})
    if response.status_code >= 400:
        raise PlatformError.from_response(response)
    return response.json()


def search(session: PlatformSession, limit: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
    """Events matching ``params`` (``type``, ``source``, ``subject``, ``root_id``, ``from``, ``to``,
    ``order``, ``ext.<name>``), page after page."""
    url: str | None = EVENTS + "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})
    count = 0
    while url:
        if limit is not None and count >= limit:  # limit=0 (or less): nothing, not one event
            return
        page = session.call("GET", url)
        for event in page["results"]:
            if limit is not None and count >= limit:
                return
            yield event
            count += 1
        url = page.get("next")


class Subscription:
    """Events matching a filter, handed to ``handler`` from a background thread, resumed across reconnects.

    The last handled event's id is kept in ``last_event_id``; after a dropped connection the
    subscription reconnects with it, and the platform replays what was missed.
    """

    def __init__(
        self,
        session: PlatformSession,
        handler: Callable[[dict[str, Any]], None],
        *,
        types: Iterable[str] = (),
        sources: Iterable[str] = (),
        subject_prefix: str = "",
        last_event_id: int | None = None,
        reconnect_max: float = 10.0,
    ) -> None:
        self.session = session
        self.handler = handler
        self.types, self.sources, self.subject_prefix = list(types), list(sources), subject_prefix
        self.last_event_id = last_event_id
        self.reconnect_max = reconnect_max
        self.connected = threading.Event()
        #: Events the handler raised on (each logged and skipped), and the last refusal.
        self.failed = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, name="platform-events-subscribe", daemon=True)
        self._thread.start()

    def url(self) -> str:
        params: dict[str, Any] = {}
        if self.types:
            params["types"] = ",".join(self.types)
        if self.sources:
            params["sources"] = ",".join(self.sources)
        if self.subject_prefix:
            params["subject_prefix"] = self.subject_prefix
        if self.last_event_id is not None:
            params["last_event_id"] = self.last_event_id
        return f"{self.session.websocket_url('/ws/events/')}?{urlencode(params)}"

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        backoff = Backoff(0.2, self.reconnect_max)
        fresh_token = False  # refused (4401) with a token fetched for this very connection
        while not self._stop.is_set():
            try:
                token = self.session.credentials.token()
                headers = {"Authorization": f"Bearer {token}"}
                with connect(
                    self.url(), additional_headers=headers, close_timeout=1, logger=WEBSOCKET_LOG
                ) as ws:
                    self._ws = ws
                    for raw in ws:
                        message = json.loads(raw)
                        kind = message.get("type")
                        if kind == "subscribed":
                            fresh_token = False
                            if self.last_event_id is None:  # resume from here if the link drops
                                self.last_event_id = message.get("latest_event_id")
                            self.connected.set()
                            backoff.reset()  # backs off again only once a connection has worked
                        elif kind == "event":
                            self._handle(message["event"])
                        elif kind == "replay.truncated":
                            break  # reconnect from last_event_id for the rest
                        elif kind == "error":
                            self.last_error = f"{message.get('code')}: {message.get('message')}"
                            log.warning("events subscription refused: %s", self.last_error)
                code, reason = ws.close_code, ws.close_reason
            except ConnectionClosed as exc:
                code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, "")
                if code not in REFUSED_CODES:
                    log.info("events subscription: %s; reconnecting", exc)
            except Exception as exc:
                code, reason = None, ""
                log.info("events subscription: %s; reconnecting", exc)
            finally:
                self._ws = None
                self.connected.clear()
            if code == 4401 and not fresh_token:
                # the token expired or was revoked while cached: once more, with a new one
                self.session.credentials.invalidate()
                fresh_token = True
                log.info("events subscription: token refused (4401); reconnecting with a new one")
                continue
            if code in REFUSED_CODES:  # not authenticated or not allowed: retrying cannot help
                self.last_error = self.last_error or f"{code} {reason}".strip()
                log.error("events subscription refused (%s); stopped", self.last_error)
                return
            if self._stop.wait(backoff.next()):
                return

    def _handle(self, event: dict[str, Any]) -> None:
        """Run the handler; an event it fails on is logged and passed (replaying it would fail again)."""
        try:
            self.handler(event)
        except Exception:
            self.failed += 1
            log.exception("events subscription: the handler failed on event %s; skipped", event.get("id"))
        self.last_event_id = max(self.last_event_id or 0, event["id"])

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        self._thread.join(timeout=5)


def subscribe(
    session: PlatformSession, handler: Callable[[dict[str, Any]], None], **filter: Any
) -> Subscription:
    """Start a :class:`Subscription` (``types``, ``sources``, ``subject_prefix``, ``last_event_id``)."""
    return Subscription(session, handler, **filter)
