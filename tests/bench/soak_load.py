"""The events soak's load: publishing jobs with retries, and the chaos thread breaking things meanwhile."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from tests.bench.harness import (
    BenchError,
    http,
)

#: Publishing answers worth retrying (the server's trouble, not the request's).
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}

# --- Publishing -----------------------------------------------------------------------------------


@dataclass
class Job:
    """One request to publish: a batch or a single event, in one of the publishing modes."""

    events: list[dict[str, Any]]
    mode: str
    resend: bool = False


def jobs_for(events: list[dict[str, Any]], batch: int, singles: int, resend_every: int) -> list[Job]:
    """Batches of ``batch`` events, the last ``singles`` events one by one spread between them.

    Batches alternate the CloudEvents batch mode and native JSON lists; singles rotate over the
    structured, binary and native modes.  One batch (and one single) in ``resend_every`` is sent
    twice, at a position that alternates between odd and even so that every mode is re-sent.
    """
    bulk, alone = events[: len(events) - singles], events[len(events) - singles :]
    batches = [bulk[i : i + batch] for i in range(0, len(bulk), batch)]
    per_batch = -(-len(alone) // max(len(batches), 1))
    jobs: list[Job] = []
    for index, chunk in enumerate(batches):
        mode = "batch" if index % 2 == 0 else "native-list"
        jobs.append(Job(chunk, mode, resend=_resend(index, resend_every)))
        for offset, event in enumerate(alone[index * per_batch : (index + 1) * per_batch]):
            number = index * per_batch + offset
            mode = ("structured", "binary", "native")[number % 3]
            jobs.append(Job([event], mode, resend=_resend(number, resend_every)))
    if not batches:
        jobs += [Job([event], "structured") for event in alone]
    return jobs


def _resend(number: int, every: int) -> bool:
    """The last of each ``every`` requests, or the one before it in every other group."""
    return number % every == every - 1 - (number // every) % 2


def request_of(job: Job) -> tuple[dict[str, str], bytes]:
    """Headers and body of a job in its publishing mode."""
    if job.mode == "batch":
        return {"Content-Type": "application/cloudevents-batch+json"}, json.dumps(job.events).encode()
    if job.mode == "native-list":
        return {"Content-Type": "application/json"}, json.dumps(job.events).encode()
    event = job.events[0]
    if job.mode == "structured":
        return {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode()
    if job.mode == "binary":
        headers = {
            f"ce-{name}": urllib.parse.quote(str(event[name]), safe="/")
            for name in ("specversion", "id", "source", "type", "subject")
        }
        return {**headers, "Content-Type": "application/json"}, json.dumps(event["data"]).encode()
    native = {k: v for k, v in event.items() if k not in {"specversion", "datacontenttype"}}
    return {"Content-Type": "application/json"}, json.dumps(native).encode()


class Publisher:
    """Sends the jobs from a few threads; retries what the server failed, checks every answer."""

    def __init__(self, url: str, token: str, threads: int) -> None:
        self.url = url
        self.token = token
        self.threads = threads
        self.published = 0  # events of first sends accepted
        self.created = 0  # as the answers count them
        self.requests: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.resends: Counter[str] = Counter()
        self._lock = threading.Lock()

    def run(self, jobs: list[Job]) -> None:
        todo: queue.Queue[Job] = queue.Queue()
        for job in jobs:
            todo.put(job)
        workers = [threading.Thread(target=self._drain, args=(todo,)) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _drain(self, todo: queue.Queue[Job]) -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._publish(job)
            except BenchError as exc:
                with self._lock:
                    self.problems.append(str(exc))

    def _publish(self, job: Job) -> None:
        answer, retried = self._send(job)
        expected = len(job.events)
        with self._lock:
            self.requests[job.mode] += 1
            self.published += expected
            self.created += answer["created"]
            if answer["count"] != expected or answer["created"] + answer["duplicates"] != expected:
                self.problems.append(f"{job.mode} of {expected}: answered {_brief(answer)}")
            elif answer["duplicates"] and not retried:
                self.problems.append(f"first send of a {job.mode} of {expected}: {_brief(answer)}")
        if not job.resend:
            return
        again, _ = self._send(job)
        with self._lock:
            self.requests[f"{job.mode} (again)"] += 1
            if again["created"] == 0 and again["duplicates"] == expected:
                self.resends["acknowledged"] += 1
            else:
                self.resends["stored_again"] += 1
                self.problems.append(f"re-sent {job.mode} of {expected}: answered {_brief(again)}")

    def _send(self, job: Job, attempts: int = 20) -> tuple[dict[str, Any], bool]:
        """The answer of the first accepted attempt, and whether an earlier one failed."""
        headers, body = request_of(job)
        headers["Authorization"] = f"Bearer {self.token}"
        retried = False
        for attempt in range(attempts):
            try:
                answer = http(self.url, method="POST", headers=headers, body=body, timeout=120)
            except (OSError, HTTPException) as exc:
                self._error(job, f"{type(exc).__name__}: {exc}")
            else:
                if answer.status in (200, 201):
                    return json.loads(answer.body), retried
                if answer.status not in RETRY_STATUSES:
                    raise BenchError(
                        f"publishing a {job.mode} answered {answer.status}: {answer.body[:300]!r}"
                    )
                self._error(job, f"HTTP {answer.status}: {answer.body[:200]!r}")
            retried = True
            time.sleep(min(0.5 * 2**attempt, 10))
        raise BenchError(f"a {job.mode} of {len(job.events)} was not accepted after {attempts} attempts")

    def _error(self, job: Job, detail: str) -> None:
        with self._lock:
            self.errors.append({"mode": job.mode, "events": len(job.events), "error": detail[:300]})


def _brief(answer: dict[str, Any]) -> str:
    return json.dumps({k: answer.get(k) for k in ("count", "created", "duplicates")})


# --- Breaking things while it runs ----------------------------------------------------------------


class Chaos(threading.Thread):
    """Kills the Celery worker (SIGKILL to its process group) and restarts it at spaced milestones,
    and stops the receiver once for a few seconds; prints the progress meanwhile.

    Progress weighs publishing 30% and the deliveries accepted by the receiver 70% (delivering
    takes longer), so that with three restarts the first falls while events are still being
    published and the others while deliveries are flowing.  Restart ``k`` of ``n`` happens at
    progress ``k / (n + 1)``; the receiver's outage half-way between the first two (or after the
    only one).
    """

    PUBLISH_WEIGHT = 0.3

    def __init__(self, soak: Any, restarts: int, outage_s: float, deadline: float) -> None:
        super().__init__(daemon=True)
        self.soak = soak
        self.deadline = deadline
        self.outage_s = outage_s
        steps = [(k / (restarts + 1), "restart worker") for k in range(1, restarts + 1)]
        if outage_s > 0:
            steps.append((1.5 / (restarts + 1) if restarts else 0.5, "receiver outage"))
        self.plan = sorted(steps)
        self.log: list[dict[str, Any]] = []
        self.failure: str | None = None
        self.done = threading.Event()

    def progress(self) -> float:
        soak = self.soak
        published = soak.publisher.published / soak.plan.count if soak.publisher else 0.0
        received = soak.receiver.unique() / max(soak.expected_deliveries, 1)
        weight = self.PUBLISH_WEIGHT
        return weight * min(published, 1.0) + (1 - weight) * min(received, 1.0)

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported by the soak, not lost in a thread
            self.failure = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _run(self) -> None:
        last_print = time.monotonic()
        while self.plan and time.monotonic() < self.deadline:
            at, action = self.plan[0]
            if self.progress() >= at:
                self.plan.pop(0)
                self._do(action)
            if time.monotonic() - last_print > 15:
                last_print = time.monotonic()
                self.soak.say(self.soak.progress_line())
            time.sleep(0.2)

    def _do(self, action: str) -> None:
        began = time.monotonic()
        entry = {
            "action": action,
            "at_s": round(began - self.soak.began, 1),
            "progress": round(self.progress(), 3),
        }
        if action == "restart worker":
            entry["killed_pids"] = self.soak.kill_worker()
            time.sleep(1.0)
            self.soak.start_worker()
        else:
            self.soak.receiver.stop()
            time.sleep(self.outage_s)
            self.soak.receiver.start()
        entry["took_s"] = round(time.monotonic() - began, 1)
        self.log.append(entry)
        self.soak.say(f"chaos: {action} at progress {entry['progress']:.2f} ({entry['took_s']} s)")
