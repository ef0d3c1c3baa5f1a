"""The monitor's hot routes (:mod:`platformsite.hotpath`): a job's steady success ping, and a
node's report of unchanged results.

Report: ``POST /api/v1/monitor/reports/`` with a JSON body whose every check result changes
nothing stored (the snapshot of each check cached, the result unchanged, no status or stats),
from a caller the policy allows to write the service (decided from the warm policy): the results'
times and outputs go to the shared cache as the full view writes them
(:func:`monitor_app.services.ingest.reports_cached`), and the answer is the view's.  A new check,
a changed result, a result that moves a counter, bad input and refusals go to the full view.

Ping: ``GET|POST /ping/<id>`` and ``/ping/<id>/0``, with or without ``?rid=<uuid>``, of a job this
process holds a copy of (from the shared cache, at most ``LOCAL_SECONDS`` old) that is steady:
passing, its counters at their caps, no run open (:func:`jobs.steady_success`).  The ping is
counted against the same rate limits as the view's, buffered with one Redis round trip
(:mod:`monitor_app.services.pingbuffer`) and answered ``200 OK``; the state loop stores it within
a loop interval.  Everything else takes the full view: a start, a failure, a log, an exit status
other than 0, a job not steady or not in the shared cache, an unknown id (404), a bad rid (400),
a throttled client (429), ``HEAD``, ``/ping/<key>/<slug>``, and every ping when there is no
buffer (``MONITOR_PING_BUFFER``: the embedded mode without Redis).

A copy up to a second old may call a job steady that a flip has just made critical: the ping is
then buffered all the same, and the flush applies it in full (the job recovers), within a loop
interval.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.cache import cache

from monitor_app.api.pings import BODY_LIMIT_HEADER, check_throttle
from monitor_app.api.views import resource
from monitor_app.models import Check
from monitor_app.services import pingbuffer
from monitor_app.services.ingest import reports_cached
from monitor_app.services.jobs import SUCCESS, job_key, steady_success
from monitor_app.services.names import SERVICE_NAME
from monitor_app.services.reports import parse_report
from platformsite import localstate
from platformsite.api.throttling import client_address, wait_seconds
from platformsite.hotpath import Answer, HotRequest, HotRoute

#: Seconds this process uses its copy of a job (read from the shared cache, which every write
#: of the job drops).
LOCAL_SECONDS = 1.0

_jobs: dict[str, tuple[float, Check]] = {}
_stats = localstate.register_cache("monitor.jobs", size=lambda: len(_jobs), reset=_jobs.clear)


def job_local(check_id: str, now: float) -> Check | None:
    """The job from this process's copy, else the shared cache's (None: ask the full view)."""
    found = _jobs.get(check_id)
    if found is not None and now - found[0] < LOCAL_SECONDS:
        _stats.hits += 1
        return found[1]
    _stats.misses += 1
    check = cache.get(job_key(check_id))
    if check is None:
        _jobs.pop(check_id, None)
        return None
    if len(_jobs) > 100_000:
        _jobs.clear()
    _jobs[check_id] = (now, check)
    return check


def ping(request: HotRequest) -> Answer | None:
    into = pingbuffer.buffer()
    action = request.args.get("action")
    if into is None or action not in (None, "0"):
        return None
    rid = request.args.get("rid") or None
    if rid is not None:
        try:
            rid = str(uuid.UUID(rid))
        except ValueError:
            return None
    now = time.time()
    check_id = request.args["check_id"].lower()  # as the view reads it (its cache key)
    check = job_local(check_id, now)
    if check is None or check.kind == Check.Kind.REPORT or not steady_success(check, SUCCESS, ""):
        return None
    environ = request.environ
    forwarded = {"x-forwarded-for": environ.get("HTTP_X_FORWARDED_FOR")}
    address = client_address(SimpleNamespace(META=environ, headers=forwarded))  # as the view's throttle
    if wait_seconds("monitor_ping", address, settings.MONITOR_PING_RATE) is not None:
        return None
    if check_throttle(check) is not None:
        return None
    limit = settings.MONITOR_PING_BODY_LIMIT
    body = request.body[:limit].decode("utf-8", "replace").replace("\x00", "\ufffd")
    pingbuffer.ping_buffer(
        check=check,
        exit_status=None if action is None else 0,
        rid=rid,
        body=body,
        method=environ["REQUEST_METHOD"],
        remote_addr=environ.get("REMOTE_ADDR", ""),
        user_agent=environ.get("HTTP_USER_AGENT", ""),
        now=now,
        into=into,
    )
    # A browser may open a ping URL: the full stack's X-Frame-Options applies (not an API call
    # with credentials, which that middleware skips).
    headers = ((BODY_LIMIT_HEADER, str(limit)), ("X-Frame-Options", settings.X_FRAME_OPTIONS))
    return Answer(200, b"OK", headers, "text/plain")


def _no_constant(value: str) -> Any:
    raise ValueError(value)  # NaN and Infinity: DRF's JSON parser refuses them too


def report(request: HotRequest) -> Answer | None:
    media, _, params = request.environ.get("CONTENT_TYPE", "").partition(";")
    if media.strip().lower() != "application/json" or params.strip() not in ("", "charset=utf-8"):
        return None
    try:
        data = json.loads(request.body.decode("utf-8"), parse_constant=_no_constant)
    except ValueError:  # UnicodeDecodeError too
        return None
    name = data.get("service") if isinstance(data, dict) else None
    if not SERVICE_NAME.matches(name) or not request.allows(resource(name), "write"):
        return None
    try:
        parsed = parse_report(data)
    except Exception:  # invalid: the view's 400
        return None
    answers = reports_cached(reports=[parsed], now=time.time())
    if answers is None:
        return None
    return Answer.json(answers[0])  # already MonitorReportOutput's shape: str ids, names, states


#: No query, or a rid alone (anything else, ``?create=1`` included, is the full view's).
QUERY = re.compile(r"(?:rid=(?P<rid>[^&]*))?")

ROUTES = [
    HotRoute(
        method="POST",
        url_name="monitor:report",
        handler=report,
        max_body=256 * 1024,  # a larger report is a batch in all but name: the view reads it
    ),
    HotRoute(method="GET", url_name="monitor-ping-id", handler=ping, query=QUERY, public=True),
    HotRoute(
        method="POST",
        url_name="monitor-ping-id",
        handler=ping,
        query=QUERY,
        public=True,
        max_body=settings.MONITOR_PING_BODY_LIMIT,
    ),
]
