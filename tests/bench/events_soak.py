"""The events service's "nothing lost" soak: publish, break the delivery path, then count.

    python -m tests.bench.events_soak [--events 100000] [--restarts 3] [--keep]

Needs DATABASE_URL (PostgreSQL) and REDIS_URL (the Celery broker and the shared cache); it
refuses to run without them.  It migrates the database, creates a service account with
``events:read events:write`` and starts, each in its own process group (``harness.Server``):

- granian WSGI serving the platform, as ``platform serve`` runs it (production settings);
- a Celery worker and Celery beat, with webhook retries shortened (``SOAK_SETTINGS``) so that
  the run ends in minutes and some deliveries do become dead letters.  Failed attempts are
  retried at once (``--backoff 0``): with a backoff, a subscription's queue waits at each
  failure until the retry falls due (strict order), which at 30% failures caps a subscription
  at a few deliveries a second.  ``--backoff 0.2`` exercises the retry wake-ups (and, after a
  worker is killed with wake-ups pending, beat's scan that stands in for them).

In this process, a webhook receiver (``Receiver``) answers ``500`` to a random 30% of the
deliveries and ``204`` to the others, after checking the Standard Webhooks signature.  Three
webhook subscriptions with different filters point at it.  Two threads publish the events in
batches of 1,000 (CloudEvents batch and native JSON lists), with some single events (structured,
binary and native modes) and some batches deliberately sent twice.  Meanwhile ``Chaos`` kills
the worker's process group with SIGKILL ``--restarts`` times and starts it again, and stops the
receiver once for a few seconds.  Then the soak waits until no delivery of its subscriptions
is pending and checks, from the database and the receiver's records:

- every event is stored exactly once (count by the run's sources, no duplicate ``(source, id)``)
  and every publish was accepted (publishing errors are retried, counted, and must be 0);
- per subscription: one delivery row per matching event (and none for the others), delivered +
  dead letters == matching events, and every delivered event was accepted by the receiver;
- no bad signature, no stale timestamp, nothing received that the subscription does not match.

Duplicated receptions are allowed (delivery is at least once) and reported.  The record goes to
``var/bench/events_soak.json``; the exit code is 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests import servers
from tests.bench.__main__ import Bench
from tests.bench.harness import (
    PYTHON,
    ROOT,
    BenchError,
    Server,
    free_port,
    git_commit,
    http,
    run_stoppable,
    write_json,
)
from tests.bench.servers_start import THREADS, _clean_env, _redact, granian_wsgi
from tests.bench.soak_load import Chaos, Publisher, jobs_for
from tests.bench.soak_receiver import Plan, Receiver, Subscription, subscriptions_for

RESULTS = ROOT / "var" / "bench" / "events_soak.json"
SCOPES = {"events:read", "events:write"}
#: Shortened delivery settings for the platform's processes (see event_app/app_settings.py).
#: ``EVENTS_WEBHOOK_BACKOFF_SECONDS`` is set from ``--backoff``.
SOAK_SETTINGS = {
    "EVENTS_WEBHOOK_TIMEOUT": "2",  # also bounds a killed runner's leftover lock (2 x timeout + 10 s)
    "EVENTS_WEBHOOK_MAX_ATTEMPTS": "5",  # 0.3^5: about 0.25% of the deliveries become dead letters
    "EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
    "EVENTS_DELIVER_DUE_INTERVAL": "1",
    "PLATFORM_ALLOW_PRIVATE_TARGETS": "true",  # the receiver listens on 127.0.0.1
}


# --- Reading the database (these run inside Django, through ``manage.py shell -c``) -------------


def db_state(sources: list[str], names: list[str], path: str) -> None:
    """Write what the database holds for the run to ``path``: events, and deliveries per subscription."""
    from django.db.models import Avg, Count, Max

    from event_app.models import Delivery, Event

    events = Event.objects.filter(source__in=sources)
    repeated = events.values("source", "event_id").annotate(n=Count("id")).filter(n__gt=1).count()
    state: dict[str, Any] = {
        "events": list(events.values_list("event_id", flat=True)),
        "repeated_keys": repeated,
        "subscriptions": {},
    }
    for name in names:
        deliveries = Delivery.objects.filter(subscription__name=name)
        by_status: dict[str, list[str]] = defaultdict(list)
        for status, event_id in deliveries.values_list("status", "event__event_id"):
            by_status[status].append(event_id)
        state["subscriptions"][name] = {
            "rows": deliveries.count(),
            "by_status": by_status,
            "attempts": deliveries.aggregate(mean=Avg("attempts"), max=Max("attempts")),
        }
    Path(path).write_text(json.dumps(state))


# --- The soak -------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Soak:
    """One run: the platform's processes, the receiver, the subscriptions, publishing and chaos,
    then the verdict (``verify``) and the record (``report``)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.began = time.monotonic()
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.tmp = ROOT / "var" / "bench" / f"soak-{stamp}-{os.getpid()}"
        self.plan = Plan(secrets.token_hex(3), args.events)
        self.subscriptions = subscriptions_for(self.plan)
        self.receiver = Receiver(free_port(), args.failure_rate, seed=args.seed)
        self.servers: dict[str, Server] = {}
        self.worker_starts = 0
        self.publisher: Publisher | None = None
        self.expected_deliveries = 0
        self.env: dict[str, str] = {}
        self.token = ""
        self.timings: dict[str, float] = {}

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:7.1f} s] {message}", flush=True)

    # --- setup ------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The platform processes' environment: production settings, this run's services, short retries."""
        env = _clean_env()
        database, redis = env.get("DATABASE_URL", ""), env.get("REDIS_URL", "")
        if not database.startswith(("postgres://", "postgresql://", "pgsql://")) or not redis:
            raise BenchError(
                "the soak needs PostgreSQL and Redis: set DATABASE_URL=postgres://... and "
                "REDIS_URL=redis://... "
                "(e.g. DATABASE_URL=postgres://platform_ci:platform_ci@127.0.0.1:5432/platform_soak "
                "REDIS_URL=redis://127.0.0.1:6391/9)"
            )
        env.update(
            DJANGO_SETTINGS_MODULE="platformsite.settings",
            PLATFORM_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(45),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            PLATFORM_VAR_DIR=str(self.tmp / "platform"),
            PROMETHEUS_MULTIPROC_DIR=str(self.tmp / "metrics"),
            PLATFORM_TASK_MODE="celery",
            PLATFORM_THROTTLE_CLIENT="1000000000/min",
            PLATFORM_ACCESS_TOKEN_SECONDS=str(24 * 3600),  # the run may outlast the default hour
            EVENTS_WEBHOOK_BACKOFF_SECONDS=str(self.args.backoff),
            **SOAK_SETTINGS,
        )
        return env

    def manage(self, *args: str) -> str:
        try:
            return servers.manage(self.env, *args)
        except subprocess.CalledProcessError as exc:
            raise BenchError(
                f"manage.py {args[0]} failed ({exc.returncode}):\n{exc.stderr or exc.stdout}"
            ) from exc

    def in_django(self, function: str, *args: Any) -> str:
        """Run one of this module's ``db_*`` functions inside Django (``manage.py shell -c``); its output."""
        call = f"{function}({', '.join(repr(arg) for arg in args)})"
        return self.manage("shell", "-c", f"from tests.bench.events_soak import {function}; {call}")

    def start_http(self) -> dict[str, str]:
        """Migrate, create the service account, start granian; the account's credentials."""
        self.say("migrate, service account ...")
        self.manage("migrate", "--no-input", "-v", "0")
        out = self.manage(
            "create_service_account", f"soak-{self.plan.run}", "--scopes", " ".join(sorted(SCOPES))
        )
        creds = json.loads(out[out.index("{") :])
        port = free_port()
        server = Server(
            name="http",
            command=granian_wsgi("platformsite.wsgi:application", port, self.args.http_workers, THREADS),
            env=self.env,
            log_path=self.tmp / "http.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers["http"] = server.start()
        server.wait_ready(lambda: http(server.base_url + "/healthz", timeout=2).status == 200)
        return creds

    def celery(self, role: str, log_name: str) -> Server:
        command = [PYTHON, "-m", "celery", "-A", "platformsite", role, "--loglevel", "INFO"]
        if role == "worker":
            command += ["--concurrency", str(self.args.concurrency), "--hostname", f"{log_name}@%h"]
        else:
            command += ["--schedule", str(self.tmp / "celerybeat-schedule")]
        return Server(
            name=log_name, command=command, env=self.env, log_path=self.tmp / f"{log_name}.log", base_url=""
        )

    def start_worker(self, wait: bool = False) -> None:
        self.worker_starts += 1
        worker = self.celery("worker", f"worker{self.worker_starts}")
        self.servers["worker"] = worker.start()
        if wait:
            worker.wait_ready(lambda: b" ready." in worker.log_path.read_bytes(), timeout=120)

    def kill_worker(self) -> list[int]:
        """SIGKILL to the worker's whole process group (main process and pool children)."""
        worker = self.servers["worker"]
        pids = [worker.proc.pid, *worker.worker_pids()] if worker.proc else []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait(timeout=10)
        worker.stop()  # the group is gone: closes the log
        return sorted(set(pids))

    def subscribe(self) -> None:
        """Delete earlier runs' soak subscriptions, then create this run's, pointing at the receiver."""
        base = self.servers["http"].base_url + "/api/v1/events/subscriptions/"
        listed = self.api("GET", base + "?page_size=1000")
        for old in listed["results"]:
            if old["name"].startswith("soak-"):
                self.api("DELETE", f"{base}{old['name']}/")
        for sub in self.subscriptions:
            created = self.api("POST", base, sub.body(self.receiver.url(sub.name)))
            sub.secret = created["secret"]
            self.receiver.subscriptions[sub.name] = sub

    def api(self, method: str, url: str, payload: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        body = json.dumps(payload).encode() if payload is not None else None
        answer = http(url, method=method, headers=headers, body=body, timeout=60)
        if answer.status >= 300:
            raise BenchError(f"{method} {url} answered {answer.status}: {answer.body[:300]!r}")
        return json.loads(answer.body) if answer.body else None

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> int:
        self.env = self.environment()
        (self.tmp / "platform").mkdir(parents=True, exist_ok=True)
        (self.tmp / "metrics").mkdir(parents=True, exist_ok=True)
        creds = self.start_http()
        self.token = Bench._token(self.servers["http"], creds, SCOPES)
        self.say("starting the Celery worker and beat ...")
        self.start_worker(wait=True)
        self.servers["beat"] = self.celery("beat", "beat").start()
        self.receiver.start()
        self.subscribe()
        events = self.plan.events()
        matching = {s.name: {e["id"] for e in events if s.matches(e)} for s in self.subscriptions}
        self.expected_deliveries = sum(len(ids) for ids in matching.values())
        self.say(
            f"run {self.plan.run}: {self.plan.count:,} events, "
            f"{self.expected_deliveries:,} deliveries expected "
            f"({', '.join(f'{name}: {len(ids):,}' for name, ids in matching.items())}), "
            f"receiver on :{self.receiver.port} failing {self.args.failure_rate:.0%}"
        )
        deadline = time.monotonic() + self.args.timeout
        chaos = Chaos(self, self.args.restarts, self.args.outage, deadline)
        singles = min(self.args.singles, self.plan.count // 10)
        jobs = jobs_for(events, self.args.batch, singles, self.args.resend_every)
        self.publisher = Publisher(
            self.servers["http"].base_url + "/api/v1/events/", self.token, self.args.publishers
        )
        chaos.start()
        started = time.monotonic()
        self.publisher.run(jobs)
        self.timings["publish_s"] = round(time.monotonic() - started, 1)
        self.say(
            f"published {self.publisher.published:,} events in {self.timings['publish_s']} s "
            f"({len(jobs)} requests)"
        )
        chaos.done.wait(max(deadline - time.monotonic(), 0))
        settled = self.wait_settled(deadline)
        self.timings["settle_s"] = round(time.monotonic() - started - self.timings["publish_s"], 1)
        self.timings["total_s"] = round(time.monotonic() - self.began, 1)
        state = self.read_state()
        checks = self.verify(events, matching, state, settled, chaos)
        return self.report(checks, state, chaos)

    def progress_line(self) -> str:
        published = self.publisher.published if self.publisher else 0
        return (
            f"published {published:,}/{self.plan.count:,}, receiver accepted "
            f"{self.receiver.unique():,}/{self.expected_deliveries:,} distinct "
            f"({self.receiver.counts['failed_on_purpose']:,} failed on purpose)"
        )

    def wait_settled(self, deadline: float) -> bool:
        """Poll the API until no delivery of the run's subscriptions is pending."""
        base = self.servers["http"].base_url + "/api/v1/events/subscriptions/"
        while True:
            waiting = [
                sub.name
                for sub in self.subscriptions
                if self.api("GET", f"{base}{sub.name}/deliveries/?status=pending&page_size=1")["results"]
            ]
            self.say(f"{self.progress_line()}; pending: {', '.join(waiting) or 'none'}")
            if not waiting:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(self.args.poll)

    def read_state(self) -> dict[str, Any]:
        path = self.tmp / "state.json"
        names = [s.name for s in self.subscriptions]
        self.in_django("db_state", list(self.plan.sources), names, str(path))
        return json.loads(path.read_text())

    # --- verdict ----------------------------------------------------------------------------------

    def verify(
        self,
        events: list[dict[str, Any]],
        matching: dict[str, set[str]],
        state: dict[str, Any],
        settled: bool,
        chaos: Chaos,
    ) -> list[Check]:
        publisher = self.publisher
        assert publisher is not None
        ids = {e["id"] for e in events}
        stored = state["events"]
        checks = [
            Check(
                "settled",
                settled,
                "no delivery pending" if settled else f"pending after {self.args.timeout:.0f} s",
            ),
            Check(
                "chaos done",
                not chaos.plan and chaos.failure is None,
                chaos.failure or f"{len(chaos.log)} actions",
            ),
            Check(
                "events stored once",
                len(stored) == len(ids) and set(stored) == ids and state["repeated_keys"] == 0,
                f"{len(stored):,} stored for {len(ids):,} published, {len(set(stored)):,} distinct, "
                f"{len(ids - set(stored)):,} missing, {state['repeated_keys']} repeated (source, id)",
            ),
            Check(
                "every publish accepted",
                not publisher.problems and publisher.created == len(ids),
                f"answers counted {publisher.created:,} created; "
                f"problems: {publisher.problems[:3] or 'none'}",
            ),
            Check(
                "publishing errors",
                not publisher.errors,
                f"{len(publisher.errors)} (retried until accepted)"
                + (f"; first: {publisher.errors[0]['error']}" if publisher.errors else ""),
            ),
            Check(
                "re-sends acknowledged, not stored",
                publisher.resends["stored_again"] == 0 and publisher.resends["acknowledged"] > 0,
                f"{publisher.resends['acknowledged']} acknowledged as duplicates, "
                f"{publisher.resends['stored_again']} stored again",
            ),
        ]
        counts = self.receiver.counts
        for name in ("bad_signature", "stale_timestamp", "unknown_path", "not_matching"):
            checks.append(Check(f"receiver: {name.replace('_', ' ')}", counts[name] == 0, str(counts[name])))
        for sub in self.subscriptions:
            checks += self.verify_subscription(sub, matching[sub.name], state["subscriptions"][sub.name])
        return checks

    def verify_subscription(self, sub: Subscription, matching: set[str], db: dict[str, Any]) -> list[Check]:
        by_status = {status: set(ids) for status, ids in db["by_status"].items()}
        delivered, dead = by_status.get("delivered", set()), by_status.get("dead", set())
        rows = set().union(*by_status.values()) if by_status else set()
        accepted = set(self.receiver.accepted[sub.name])
        return [
            Check(
                f"{sub.name}: one delivery per matching event",
                db["rows"] == len(matching) and rows == matching,
                f"{db['rows']:,} rows for {len(matching):,} matching; "
                f"{len(matching - rows):,} without a row, "
                f"{len(rows - matching):,} rows for events that do not match",
            ),
            Check(
                f"{sub.name}: delivered + dead letters == matching",
                len(delivered) + len(dead) == len(matching) and not delivered & dead,
                f"{len(delivered):,} delivered + {len(dead):,} dead = {len(delivered) + len(dead):,}",
            ),
            Check(
                f"{sub.name}: every delivered event received",
                delivered <= accepted,
                f"{len(delivered - accepted):,} delivered but never accepted by the receiver; received "
                f"{len(accepted):,} distinct, {self.receiver.duplicates(sub.name):,} duplicates, "
                f"{len(accepted & dead):,} of them dead letters",
            ),
        ]

    def report(self, checks: list[Check], state: dict[str, Any], chaos: Chaos) -> int:
        publisher = self.publisher
        assert publisher is not None
        passed = all(c.ok for c in checks)
        print()
        for check in checks:
            print(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        record = {
            "scenario": "events_soak",
            "passed": passed,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "run": self.plan.run,
            "events": self.plan.count,
            "restarts": self.args.restarts,
            "failure_rate": self.args.failure_rate,
            "settings": {**SOAK_SETTINGS, "EVENTS_WEBHOOK_BACKOFF_SECONDS": str(self.args.backoff)},
            "database": _redact(self.env["DATABASE_URL"]),
            "servers": {name: " ".join(s.command[1:]) for name, s in self.servers.items()},
            "timings": self.timings,
            "publishing": {
                "requests": dict(publisher.requests),
                "errors": publisher.errors[:50],
                "error_count": len(publisher.errors),
                "resends": dict(publisher.resends),
                "problems": publisher.problems[:50],
            },
            "chaos": chaos.log,
            "receiver": dict(self.receiver.counts),
            "subscriptions": {
                sub.name: {
                    "types": sub.types,
                    "sources": sub.sources,
                    "rows": state["subscriptions"][sub.name]["rows"],
                    "by_status": {
                        k: len(v) for k, v in state["subscriptions"][sub.name]["by_status"].items()
                    },
                    "attempts": state["subscriptions"][sub.name]["attempts"],
                    "received_distinct": len(self.receiver.accepted[sub.name]),
                    "received_duplicates": self.receiver.duplicates(sub.name),
                }
                for sub in self.subscriptions
            },
            "checks": [asdict(c) for c in checks],
        }
        write_json(RESULTS, record)
        print(
            f"\n{'PASSED' if passed else 'FAILED'}: {self.plan.count:,} events, {self.args.restarts} worker "
            f"restarts, receiver failing {self.args.failure_rate:.0%}; {self.timings['total_s']} s; "
            f"written {RESULTS.relative_to(ROOT)}"
        )
        self.passed = passed
        return 0 if passed else 1

    def cleanup(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if self.token and "http" in self.servers:  # leave the rows for inspection, stop matching
            base = self.servers["http"].base_url + "/api/v1/events/subscriptions/"
            for sub in self.subscriptions:
                with contextlib.suppress(BenchError, OSError):
                    self.api("PATCH", f"{base}{sub.name}/", {"is_active": False})
        self.receiver.stop()
        for server in reversed(list(self.servers.values())):
            try:
                server.stop()
            except Exception as exc:
                print(f"could not stop {server.name}: {exc}", file=sys.stderr)
        if self.tmp.exists() and not self.args.keep and getattr(self, "passed", False):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            print(f"kept {self.tmp.relative_to(ROOT)} (server logs, database state)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.events_soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=100_000, help="events to publish (100000)")
    parser.add_argument("--restarts", type=int, default=3, help="kill -9 and restarts of the worker (3)")
    parser.add_argument("--failure-rate", type=float, default=0.3, help="receiver's share of 500s (0.3)")
    parser.add_argument("--batch", type=int, default=1000, help="events per batch (1000)")
    parser.add_argument("--singles", type=int, default=300, help="events published one by one (300)")
    parser.add_argument("--resend-every", type=int, default=10, help="send one request in n twice (10)")
    parser.add_argument("--publishers", type=int, default=2, help="publishing threads (2)")
    parser.add_argument("--outage", type=float, default=4.0, help="seconds the receiver is down (4)")
    parser.add_argument(
        "--backoff",
        type=float,
        default=0.0,
        help="EVENTS_WEBHOOK_BACKOFF_SECONDS (0: retry at once; with a backoff a subscription's "
        "queue waits at each failure until the retry falls due)",
    )
    parser.add_argument("--concurrency", type=int, default=3, help="Celery worker processes (3)")
    parser.add_argument("--http-workers", type=int, default=2, help="granian workers (2)")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds to wait for the run (7200)")
    parser.add_argument(
        "--poll", type=float, default=10, help="seconds between checks for pending deliveries (10)"
    )
    parser.add_argument("--seed", type=int, default=1, help="the receiver's random seed (1)")
    parser.add_argument("--keep", action="store_true", help="keep the run's directory even when it passed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    soak = Soak(parse_args(argv))
    return run_stoppable("events soak", soak.run, soak.cleanup)


if __name__ == "__main__":
    sys.exit(main())
