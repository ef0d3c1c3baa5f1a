"""Healthchecks, status and process stats for Python services, and job pings.

```python
from platform_client import PlatformSession
from platform_client.monitor import Monitor, ping

monitor = Monitor(PlatformSession(), "orders", node="orders-1")
monitor.register_check("db", lambda: db.execute("select 1") and "passing", interval=10)
monitor.http_check("api", "http://127.0.0.1:8080/healthz", interval=10)
app = monitor.middleware(app)  # per-endpoint success, errors and dropped, for the stats
with monitor:  # checks, status and stats reported from a background thread
    serve()

with ping("https://platform.example", "1f0e...-job-uuid"):  # start, then success or exit status
    run_backup()
```

A check function returns a state (``"passing"``, ``"warning"``, ``"critical"``), a
``(state, output)`` pair, ``True``/``False``, or raises (critical, with the exception as output);
one that runs past its ``timeout`` is reported critical. HTTP checks are judged as Consul does:
2xx passing, 429 warning, anything else (or no answer) critical. Process stats use ``psutil``
when it is installed (CPU, RSS, threads); without it, what the standard library tells (RSS from
``resource``, threads from ``threading``). Plain httpx, no Django.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from platform_client._checks import seconds
from platform_client.session import PlatformError, PlatformSession, platform_urls

log = logging.getLogger(__name__)

#: Refusals of the caller rather than of the report (credentials refused or not allowed, too
#: many requests): the report's counts are kept for the next one, which may be accepted.
RETRIED = frozenset({401, 403, 429})

API = "/api/v1/monitor"
STATES = ("passing", "warning", "critical", "unknown")
#: What a check's result may define besides its state and output: the monitor reads this list
#: too (monitor_app.services.reports.DEFINITION) and refuses any other field.
#: A node's statuses (in any case, as the monitor reads them).
STATUSES = ("UNKNOWN", "STARTED", "RUNNING", "STOPPED")
DEFINITION_FIELDS = (
    "description",
    "critical",
    "interval",
    "ttl",
    "failures_before_critical",
    "success_before_passing",
    "failure_rate",
    "flap",
    "depends_on",
    "remind_every",
)


def judge_http(status_code: int | None) -> str:
    """Consul's reading of an HTTP check: 2xx passing, 429 warning, else critical."""
    if status_code is None:
        return "critical"
    if 200 <= status_code < 300:
        return "passing"
    return "warning" if status_code == 429 else "critical"


def outcome(value: Any) -> tuple[str, str]:
    """A check function's answer as (state, output)."""
    if isinstance(value, tuple) and len(value) == 2:
        state, output = value
        return (state if state in STATES else "critical"), str(output)
    if value is True or value is None:
        return "passing", ""
    if value is False:
        return "critical", ""
    if isinstance(value, str) and value in STATES:
        return value, ""
    return "critical", f"unexpected check result: {value!r}"[:500]


@dataclass
class Check:
    name: str
    fn: Callable[[], Any]
    interval: float
    timeout: float
    definition: dict[str, Any]
    due: float = 0.0


@dataclass
class EndpointCounts:
    success: int = 0
    errors: int = 0
    dropped: int = 0


@dataclass
class EndpointStats:
    """Per-endpoint request counts since the last report (thread-safe)."""

    counts: dict[str, EndpointCounts] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Called before each take: recorders holding requests not counted yet count them now.
    before_take: list[Callable[[], None]] = field(default_factory=list)

    def count(self, method: str, outcome_: str, n: int = 1) -> None:
        with self.lock:
            counts = self.counts.get(method)
            if counts is None:
                if len(self.counts) >= 200:  # bounded: the rest are counted together
                    method = "other"
                counts = self.counts.setdefault(method, EndpointCounts())
            setattr(counts, outcome_, getattr(counts, outcome_) + n)

    def take(self) -> list[dict[str, Any]]:
        for flush in list(self.before_take):
            flush()
        with self.lock:
            taken, self.counts = self.counts, {}
        return [{"method": method, **vars(counts)} for method, counts in sorted(taken.items())]

    def give_back(self, taken: list[dict[str, Any]]) -> None:
        """Counts a report could not deliver: the next report carries them."""
        for entry in taken:
            for outcome_ in ("success", "errors", "dropped"):
                if entry[outcome_]:
                    self.count(entry["method"], outcome_, entry[outcome_])


def process_stats() -> dict[str, Any]:
    """CPU, memory and threads of this process (psutil when installed, else the standard library)."""
    stats: dict[str, Any] = {"threads": threading.active_count()}
    try:
        import psutil  # optional

        process = psutil.Process()
        stats["cpu"] = process.cpu_percent(interval=None)
        stats["memory"] = float(process.memory_info().rss)
        stats["threads"] = process.num_threads()
        stats["runtime"] = max(0.0, time.time() - process.create_time())
    except ImportError:
        try:
            import resource

            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            stats["memory"] = float(rss * 1024)  # kilobytes on Linux
        except (ImportError, OSError):
            pass
    return stats


class Monitor:
    """Reports a node's checks, status and stats to the monitor every ``interval`` seconds."""

    def __init__(
        self,
        session: PlatformSession,
        service: str,
        node: str | None = None,
        *,
        interval: float = 10.0,
        workers: int = 4,
    ) -> None:
        self.session = session
        self.service = service
        self.node = node or f"{service}-{uuid.uuid4().hex[:12]}"
        self.interval = seconds(interval, "interval")  # 0 or less: the reporting thread would spin
        self.checks: dict[str, Check] = {}
        self.endpoints = EndpointStats()
        self.status: dict[str, Any] = {"status": "STARTED", "info": {}}
        self.started = time.time()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="monitor-check")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Seconds stop() waits for the reporting thread (a report in flight is waited for anyway).
        self.stop_wait = 5.0
        #: One report at a time, so the STOPPED one sent by stop() is the last to land: a periodic
        #: report still in flight would otherwise bring the node back after it stopped.
        self._sending = threading.Lock()
        self._last_stats = time.monotonic()

    # --- declaring ------------------------------------------------------------------------------

    def register_check(
        self,
        name: str,
        fn: Callable[[], Any],
        interval: float = 10.0,
        *,
        timeout: float | None = None,
        ttl: int | None = None,
        **definition: Any,
    ) -> None:
        """Run ``fn`` every ``interval`` seconds; thresholds etc. go to the monitor as given (a
        keyword the monitor does not know is a ``TypeError`` here: it would refuse every report)."""
        unknown = sorted(set(definition) - set(DEFINITION_FIELDS))
        if unknown:
            raise TypeError(
                f"register_check() got unknown keywords {', '.join(unknown)}; the monitor takes "
                f"{', '.join(sorted(DEFINITION_FIELDS))}"
            )
        interval = seconds(interval, "interval")
        timeout = seconds(timeout, "timeout") if timeout is not None else max(interval, 1.0)
        definition = {"interval": max(1, int(interval)), **definition}
        if ttl is not None:
            definition["ttl"] = ttl
        self.checks[name] = Check(name, fn, interval, timeout, definition)

    def http_check(
        self, name: str, url: str, interval: float = 10.0, *, timeout: float = 5.0, **definition: Any
    ) -> None:
        def probe() -> tuple[str, str]:
            try:
                response = httpx.get(url, timeout=timeout)
            except httpx.HTTPError as exc:
                return "critical", f"GET {url}: {exc}"
            return judge_http(response.status_code), f"GET {url}: {response.status_code}"

        self.register_check(name, probe, interval, timeout=timeout + 1, **definition)

    def set_status(self, status: str, **info: Any) -> None:
        """UNKNOWN, STARTED, RUNNING or STOPPED, with free-form info."""
        if not isinstance(status, str) or status.upper() not in STATUSES:  # else every report is refused
            raise ValueError(f"a node's status is one of {', '.join(STATUSES)}, not {status!r}")
        self.status = {"status": status, "info": info}

    def middleware(self, app: Callable) -> Callable:
        """A WSGI middleware counting each ``METHOD /path``: success, errors (5xx), dropped (raised)."""
        endpoints = self.endpoints

        def wrapped(environ: dict[str, Any], start_response: Callable) -> Any:
            method = f"{environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"[:200]

            def counting_start(status: str, headers: list, exc_info: Any = None) -> Any:
                endpoints.count(method, "errors" if status[:1] == "5" else "success")
                return (
                    start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
                )

            try:
                return app(environ, counting_start)
            except Exception:
                endpoints.count(method, "dropped")
                raise

        return wrapped

    # --- running -----------------------------------------------------------------------------------

    def run_check(self, check: Check) -> dict[str, Any]:
        """Run one check (at most its timeout): its result as the monitor takes it."""
        future = self._pool.submit(check.fn)
        try:
            state, output = outcome(future.result(timeout=check.timeout))
        except FutureTimeout:
            state, output = "critical", f"timed out after {check.timeout:g} s"
        except Exception as exc:
            state, output = "critical", f"{type(exc).__name__}: {exc}"[:4000]
        return {"name": check.name, "status": state, "output": output, **check.definition}

    def report(self, *, now: float | None = None, all_checks: bool = False) -> dict[str, Any]:
        """Run the checks that are due, and send them with the status and stats (one call)."""
        with self._sending:
            return self._report(now=now, all_checks=all_checks)

    def _report(
        self, *, now: float | None = None, all_checks: bool = False, **request: Any
    ) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        due = [c for c in self.checks.values() if all_checks or c.due <= now]
        results = []
        for check in due:
            results.append(self.run_check(check))
            check.due = now + check.interval
        period_started = self._last_stats
        self._last_stats = time.monotonic()
        info = {**self.status["info"], "gc": [generation["collections"] for generation in gc.get_stats()]}
        endpoints = self.endpoints.take()
        stats = {
            **process_stats(),
            "runtime": time.time() - self.started,
            # the period the counts cover (at most a day: the platform's bound)
            "seconds": round(min(self._last_stats - period_started, 86400.0), 3),
            "endpoints": endpoints,
        }
        body = {
            "service": self.service,
            "node": self.node,
            "checks": results,
            "status": {"status": self.status["status"], "info": info},
            "stats": stats,
        }
        try:
            return self.session.call("POST", f"{API}/reports/", json=body, **request)
        except (httpx.TransportError, PlatformError) as exc:
            if isinstance(exc, PlatformError) and exc.status < 500 and exc.status not in RETRIED:
                raise  # refused for what it holds: sending it again would be refused again
            # Not delivered (platform down or overloaded): the counts and their period go in the
            # next report, so that no request goes uncounted.
            self.endpoints.give_back(endpoints)
            self._last_stats = period_started
            raise

    def start(self) -> Monitor:
        if self._thread is None:
            self.set_status("RUNNING", **self.status["info"])
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="monitor-reporter", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop reporting and send the STOPPED report; with ``timeout``, in that many seconds at
        most (waiting for the thread, a report in flight, and the last report's answer)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            wait = self.stop_wait if deadline is None else min(self.stop_wait, timeout or 0.0)
            self._thread.join(timeout=wait)
            self._thread = None
        left = -1 if deadline is None else max(deadline - time.monotonic(), 0.0)
        if self._sending.acquire(timeout=left):  # after a report in flight, and no periodic one after it
            try:
                self.set_status("STOPPED", **self.status["info"])
                request = {} if deadline is None else {"timeout": max(deadline - time.monotonic(), 0.01)}
                self._report(**request)
            except (httpx.HTTPError, PlatformError) as exc:
                log.warning("monitor: the last report failed: %s", exc)
            except Exception:
                log.warning("monitor: the last report failed", exc_info=True)
            finally:
                self._sending.release()
        else:
            log.warning("monitor: the last report was not sent (a report in flight outlasted the stop)")
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while True:
            with self._sending:
                if self._stop.is_set():  # stop() may have sent STOPPED while this one waited
                    return
                try:
                    self._report()
                except PlatformError as exc:
                    if 400 <= exc.status < 500 and exc.status not in RETRIED:
                        log.error("monitor: the platform refused a report: %s (every report will be)", exc)
                    elif exc.status in (401, 403):  # the account, not the report: it may come back
                        log.error("monitor: a report was refused: %s (its counts kept for the next)", exc)
                    else:
                        log.warning("monitor: a report failed: %s (retried at the next interval)", exc)
                except httpx.HTTPError as exc:  # the platform unreachable
                    log.warning("monitor: a report failed: %s (retried at the next interval)", exc)
                except Exception:
                    log.warning("monitor: a report failed (retried at the next interval)", exc_info=True)
            self._stop.wait(min([self.interval, *(c.interval for c in self.checks.values())]))

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- job pings ------------------------------------------------------------------------------------


def ping_url(base_url: str | None, check: str) -> str:
    """``check`` is a job's id, or ``key/slug``; the base defaults to ``PLATFORM_URL`` (its first
    address when it names several)."""
    if not isinstance(check, str):  # a ping never raises another error (send_ping logs a ValueError)
        raise ValueError(f"A check is a job's id or 'key/slug', got {check!r}.")
    base = platform_urls(base_url)[0]
    return f"{base}/ping/{check.strip('/')}"


def ping_action(action: str | int) -> str:
    """The URL's last part for ``action``: ``""``, ``start``, ``fail``, ``log``, or an exit status
    0-255 given as an ``int`` (not a ``bool``) or its ASCII digits; ``ValueError`` otherwise."""
    if isinstance(action, int) and not isinstance(action, bool) and 0 <= action <= 255:
        return str(action)
    if isinstance(action, str) and (
        action in ("", "start", "fail", "log")
        or (action.isascii() and action.isdigit() and len(action) <= 3 and int(action) <= 255)
    ):
        return action
    raise ValueError(f"An action is success, start, fail, log or an exit status 0-255, got {action!r}.")


def send_ping(base_url: str | None, check: str, action: str | int = "", **options: Any) -> int:
    """One ping (:func:`ping_request`'s arguments): the HTTP status, 0 when the platform cannot be
    reached. A ping never raises (a job must not fail because its ping did); a failed one is
    logged as a warning."""
    try:
        response = ping_request(base_url, check, action, **options)
    except (httpx.HTTPError, ValueError):  # unreachable, or an action no ping URL takes
        where = ping_url(base_url, check) if isinstance(check, str) else repr(check)
        log.warning("monitor: a ping to %s failed", where, exc_info=True)
        return 0
    if response.status_code not in (200, 201):  # 201: created by ?create=1
        log.warning(
            "monitor: a ping to %s answered %s: %s", response.url, response.status_code, response.text[:200]
        )
    return response.status_code


def ping_request(
    base_url: str | None,
    check: str,
    action: str | int = "",
    *,
    body: str = "",
    rid: str | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """One ping (``""`` success, ``start``, ``fail``, ``log`` or an exit status, an ``int`` 0-255
    or its digits, ``body`` kept up to 10,000 bytes, ``rid`` pairing a start with its end): the
    platform's answer, or ``httpx.HTTPError``; ``ValueError`` for another action (``True`` and
    ``-1`` included), unsent (the URL would read as a check that does not exist)."""
    action = ping_action(action)
    if not isinstance(body, str):
        raise ValueError(f"A ping's body is a str, got {type(body).__name__}.")
    url = ping_url(base_url, check) + (f"/{action}" if action else "")
    params = {"rid": rid} if rid else None
    return httpx.post(url, content=body.encode()[:10_000], params=params, timeout=timeout)


@contextmanager
def ping(check: str, base_url: str | None = None, *, timeout: float = 10.0) -> Iterator[str]:
    """Ping ``/start`` on entry, then the exit status on exit: 0, or 1 (or a ``SystemExit``'s code)
    with the traceback as the body.  The run id pairs the two, so overlapping runs are timed apart."""
    rid = str(uuid.uuid4())
    send_ping(base_url, check, "start", rid=rid, timeout=timeout)
    try:
        yield rid
    except SystemExit as exc:
        code = int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 1)  # True: 1
        send_ping(base_url, check, min(max(code, 0), 255), rid=rid, timeout=timeout)
        raise
    except BaseException:
        send_ping(base_url, check, "1", body=traceback.format_exc()[-10_000:], rid=rid, timeout=timeout)
        raise
    else:
        send_ping(base_url, check, "0", rid=rid, timeout=timeout)
