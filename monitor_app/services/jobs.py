"""Job checks and their pings: Healthchecks.io's contract for jobs that cannot hold a connection.

A job check expects a ping every ``interval`` seconds (kind ``period``) or on a cron schedule in a
time zone (kind ``cron``), each with a grace time (``ttl``).  ``/ping/<id>`` (or
``/ping/<key>/<slug>``) is a success, ``/start`` starts a run (it must end within the grace
time), ``/fail`` and a non-zero exit status are failures, ``/log`` only records.  ``?rid=``
pairs a start with its end, so overlapping runs are timed apart.  Every ping is stored (its
body up to ``MONITOR_PING_BODY_LIMIT`` bytes), the last ``MONITOR_PINGS_KEPT`` per check kept.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet

from monitor_app.models import Check, Ping, PingKey
from monitor_app.services import engine
from monitor_app.services.ingest import report_key
from monitor_app.services.reports import nulls_refused, parse_definition
from platformsite.api.errors import Invalid, NotFound
from platformsite.cache import CACHE_DOWN

#: A job created by ``?create=1`` expects a ping a day, with an hour's grace.
DEFAULT_PERIOD, DEFAULT_GRACE = 86400, 3600
SUCCESS, START, FAIL, LOG = Ping.Kind.SUCCESS, Ping.Kind.START, Ping.Kind.FAIL, Ping.Kind.LOG

log = logging.getLogger(__name__)


def parse_schedule(schedule: Any, tz: Any) -> tuple[str, str]:
    if not isinstance(schedule, str) or len(schedule) > 100 or not croniter.is_valid(schedule):
        raise Invalid(
            "schedule is not a cron expression.",
            code="invalid_schedule",
            details={"schedule": str(schedule)[:100]},
        )
    try:
        croniter(schedule).get_next()
    except CroniterBadDateError as exc:  # well formed, but no such date (say the 31st of February)
        raise Invalid(
            "schedule never fires: no date matches it.",
            code="invalid_schedule",
            details={"schedule": schedule},
        ) from exc
    if not isinstance(tz, str):
        raise Invalid("timezone must be an IANA time zone name.", code="invalid_timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Invalid(
            f"Unknown time zone {tz[:64]!r}.", code="invalid_timezone", details={"timezone": tz[:64]}
        ) from exc
    return schedule, tz


def next_deadline(check: Check, after: float) -> datetime:
    """When the job is late if it does not ping again: the next expected ping plus the grace."""
    if check.kind == Check.Kind.CRON:
        start = datetime.fromtimestamp(after, ZoneInfo(check.timezone))
        expected = croniter(check.schedule, start).get_next(datetime)
        return expected + timedelta(seconds=check.ttl)
    return engine.to_datetime(after + check.interval + check.ttl)


def interval_refused() -> Invalid:
    """A cron job's interval (set or changed), refused as a period job's schedule is."""
    return Invalid(
        "A cron job has a schedule, not an interval (kind period).",
        code="invalid_schedule",
        details={"check.interval": "A cron job pings on its schedule."},
    )


def job_create(*, service: str, name: str, fields: dict[str, Any]) -> Check:
    """A new job check (kind period or cron) of ``service``; 409 if the slug is taken."""
    nulls_refused(fields, "check")  # a null setting would leave its default without a word
    kind = fields.pop("kind", Check.Kind.PERIOD)
    definition = parse_definition(fields, "check")
    values: dict[str, Any] = {
        "interval": DEFAULT_PERIOD,
        "ttl": DEFAULT_GRACE,
        "failures_before_critical": 1,
        "success_before_passing": 1,
        **definition,
    }
    if kind == Check.Kind.CRON:
        if "interval" in fields:
            raise interval_refused()
        values["schedule"], values["timezone"] = parse_schedule(
            fields.get("schedule"), fields.get("timezone", "UTC")
        )
    elif kind != Check.Kind.PERIOD:
        raise Invalid("kind must be period or cron.", code="invalid_kind", details={"kind": str(kind)[:20]})
    elif "schedule" in fields or "timezone" in fields:  # as a change of a period job refuses them
        raise Invalid(
            "Only a cron job has a schedule (kind cron).",
            code="invalid_schedule",
            details={"kind": kind},
        )
    try:
        with transaction.atomic():
            return Check.objects.create(service=service, node="", name=name, kind=kind, **values)
    except IntegrityError:
        from platformsite.api.errors import Conflict

        raise Conflict(f"Service {service!r} already has a job {name!r}.", code="check_exists") from None


def key_create(*, service: str, actor: str = "") -> PingKey:
    # Never a key starting with "-": a command line (platform monitor ping KEY/slug) reads it as an option.
    while (key := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return PingKey.objects.create(key=key, service=service, created_by=actor[:200])


JOB_PREFIX = "monitor:j:"
#: A job's row is kept in the shared cache this long for its pings (dropped after every write).
JOB_SECONDS = 60


def job_key(check_id: Any) -> str:
    return f"{JOB_PREFIX}{check_id}"


def job_cached(check_id: Any) -> Check | None:
    """A job check by id for its pings: from the shared cache, else the database (then cached).
    Every write of a job drops its entry after commit (:func:`job_forget`)."""
    try:
        check = cache.get(job_key(check_id))
    except CACHE_DOWN:  # Redis down: the database, keeping no copy
        return _job_row(check_id)
    if check is None:
        check = _job_row(check_id)
        if check is not None:
            cache.set(job_key(check_id), check, timeout=JOB_SECONDS)
    return check


def _job_row(check_id: Any) -> Check | None:
    return Check.objects.filter(pk=check_id).exclude(kind=Check.Kind.REPORT).order_by().first()


def job_forget(check_id: Any) -> None:
    """Drop a job's cached row once the writing transaction commits.  The write is stored by then:
    a shared cache that cannot be reached is logged, and the copy lives out its ``JOB_SECONDS``."""

    def forget() -> None:
        try:
            cache.delete(job_key(check_id))
        except CACHE_DOWN as exc:
            log.warning("monitor: the cached row of job %s could not be dropped: %s", check_id, exc)

    transaction.on_commit(forget)


def job_by_slug(*, key: str, slug: str, create: bool) -> tuple[Check, bool]:
    """The job of this ping key and slug, and whether this call created it (``?create=1``)."""
    ping_key = PingKey.objects.filter(key=key).only("service").first()
    if ping_key is None:
        raise NotFound("No such ping key.", code="check_not_found")
    check = Check.objects.filter(service=ping_key.service, node="", name=slug).first()
    if check is not None:
        return check, False
    if not create:
        raise NotFound("No check with this slug (add ?create=1 to create it).", code="check_not_found")
    try:
        return job_create(service=ping_key.service, name=slug, fields={}), True
    except Exception:
        return Check.objects.get(service=ping_key.service, node="", name=slug), False


def parse_action(action: str | None) -> tuple[str, int | None]:
    """(ping kind, exit status) of the URL's last part; 400 for an exit status over 255."""
    if not action:
        return SUCCESS, None
    if action in (START, FAIL, LOG):
        return action, None
    digits = action.lstrip("0") or "0"  # /0001 is 1, as Healthchecks.io's integer route reads it
    if len(digits) > 3 or int(digits) > 255:
        raise Invalid(
            "An exit status is 0-255.", code="invalid_exit_status", details={"exit_status": action[:12]}
        )
    status = int(digits)
    return (SUCCESS if status == 0 else FAIL), status


def parse_rid(raw: str | None) -> uuid.UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Invalid("rid must be a UUID.", code="invalid_rid", details={"rid": raw[:64]}) from None


def ping_record(
    *,
    check: Check,
    kind: str,
    exit_status: int | None,
    rid: uuid.UUID | None,
    body: str,
    method: str,
    remote_addr: str,
    user_agent: str,
    now: float,
) -> Ping:
    """Store a ping and move its check (start: a run is open; success or failure: it ends)."""
    if check.kind == Check.Kind.REPORT:
        raise NotFound("This check is reported by its node, not pinged.", code="check_not_found")
    run_key = str(rid) if rid else ""
    duration = None
    runs = dict(check.runs or {})
    if steady_success(check, kind, run_key):
        ping = _ping_row(check, kind, exit_status, rid, None, method, remote_addr, user_agent, body, now)
        try:
            _remember_success(check, body, now)
        except CACHE_DOWN:
            # Redis down: the state loop cannot learn this ping's time from the shared cache, so
            # the row takes the new deadline, as a ping that is not steady would give it.
            Check.objects.filter(pk=check.pk).update(
                **_ended_fields(check, SUCCESS, None, body, now), version=F("version") + 1
            )
            job_forget(check.pk)
        return ping
    if kind == START:
        runs[run_key] = now
        if len(runs) > 20:  # starts that never ended: keep the newest
            runs = dict(sorted(runs.items(), key=lambda item: item[1])[-20:])
        extra = {
            "runs": runs,
            "expires_at": engine.to_datetime(now + check.ttl),
            "last_report": engine.to_datetime(now),
        }
        applied = None
    elif kind == LOG:
        extra, applied = None, None
    else:
        started = runs.pop(run_key, None)
        if started is not None:
            duration = round(now - started, 3)
        extra = {"runs": runs, **_ended_fields(check, kind, exit_status, body, now)}
        applied = kind
    with transaction.atomic():
        ping = _ping_row(check, kind, exit_status, rid, duration, method, remote_addr, user_agent, body, now)
        if applied is not None:
            reported = engine.PASSING if applied == SUCCESS else engine.CRITICAL
            reason = "ping" if applied == SUCCESS else (f"exit {exit_status}" if exit_status else "fail")
            engine.check_apply(check=check, reported=reported, now=now, reason=reason, extra=extra)
        elif extra is not None:
            Check.objects.filter(pk=check.pk).update(**extra, version=F("version") + 1)
            job_forget(check.pk)
    return ping


def steady_success(check: Check, kind: str, run_key: str) -> bool:
    """A success ping that changes nothing stored but the deadline: the check passes, its
    counters are at their caps, no run is open.  Its time goes to the shared cache only (the state
    loop renews the stored deadline from it), so concurrent pings of one job never queue on its
    row."""
    return (
        kind == SUCCESS
        and check.status == engine.PASSING
        and check.expires_at is not None
        and not check.runs
        and check.failures == 0
        and check.successes >= max(int(check.success_before_passing), 1)
        and not check.failure_rate
    )


def _ping_row(
    check: Check,
    kind: str,
    exit_status: int | None,
    rid: uuid.UUID | None,
    duration: float | None,
    method: str,
    remote_addr: str,
    user_agent: str,
    body: str,
    now: float,
) -> Ping:
    return Ping.objects.create(
        check_ref=check,
        kind=kind,
        exit_status=exit_status,
        rid=rid,
        duration=duration,
        method=method[:8],
        remote_addr=remote_addr[:64],
        user_agent=user_agent[:200],
        body=body,
        at=engine.to_datetime(now),
    )


def _remember_success(check: Check, body: str, now: float) -> None:
    """A steady success's time and output, in the shared cache for the state loop (which renews the
    stored deadline from it) and the readers."""
    limit = settings.MONITOR_MAX_OUTPUT_BYTES
    entry = (now, engine.PASSING, body[:limit], len(body) > limit, {})
    cache.set(report_key(check.pk), entry, timeout=check.interval + check.ttl + 86400)


def _ended_fields(check: Check, kind: str, exit_status: int | None, body: str, now: float) -> dict[str, Any]:
    """What a run's end (a success or failure ping) writes on the check's row, its runs aside; a
    steady success too, when it cannot go to the shared cache."""
    limit = settings.MONITOR_MAX_OUTPUT_BYTES
    output = f"exit status {exit_status}" if exit_status else ("failed" if kind == FAIL else "")
    return {
        "output": body[:limit] if body else output,
        "truncated": len(body) > limit,
        "last_report": engine.to_datetime(now),
        "expires_at": None if kind == FAIL else next_deadline(check, now),
    }


def _first_dropped(check_id: Any) -> int | None:
    """The id of the newest ping of ``check_id`` beyond the MONITOR_PINGS_KEPT newest (None: all kept)."""
    kept = settings.MONITOR_PINGS_KEPT
    cutoff = (
        Ping.objects.filter(check_ref=check_id).order_by("-id").values_list("id", flat=True)[kept : kept + 1]
    )
    return cutoff[0] if cutoff else None


def pings_kept(check: Check) -> QuerySet[Ping]:
    """A check's pings as kept: its newest MONITOR_PINGS_KEPT, also between two hourly purges."""
    pings = Ping.objects.filter(check_ref=check)
    cutoff = _first_dropped(check.pk)
    return pings if cutoff is None else pings.filter(id__gt=cutoff)


def pings_purge() -> int:
    """Keep the newest MONITOR_PINGS_KEPT pings of each check."""
    removed = 0
    for check_id in Ping.objects.values_list("check_ref", flat=True).distinct():
        cutoff = _first_dropped(check_id)
        if cutoff is not None:
            removed += Ping.objects.filter(check_ref=check_id, id__lte=cutoff).delete()[0]
    return removed
