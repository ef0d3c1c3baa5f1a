"""The events soak's plan (what is published, who subscribes) and its webhook receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENT_TYPES = ("soak.a.created", "soak.b.updated", "soak.c.deleted")

# --- What is published, and who wants it ----------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The run's events: ``count`` CloudEvents with unique ids, spread over two sources and three types."""

    run: str
    count: int

    @property
    def sources(self) -> tuple[str, str]:
        return f"/soak/{self.run}/alpha", f"/soak/{self.run}/beta"

    def event(self, i: int) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": f"{self.run}-{i:07d}",
            "source": self.sources[(i // len(EVENT_TYPES)) % 2],
            "type": EVENT_TYPES[i % len(EVENT_TYPES)],
            "subject": f"soak/{i % 16}",
            "datacontenttype": "application/json",
            "data": {"i": i, "run": self.run},
        }

    def events(self) -> list[dict[str, Any]]:
        return [self.event(i) for i in range(self.count)]


@dataclass
class Subscription:
    """A webhook subscription of the soak: its filter (matched here independently of the platform)."""

    name: str
    types: list[str]
    sources: list[str] = field(default_factory=list)
    secret: str = ""

    def matches(self, event: dict[str, Any]) -> bool:
        type_ok = any(
            event["type"].startswith(t[:-1]) if t.endswith("*") else event["type"] == t for t in self.types
        )
        return type_ok and (not self.sources or event["source"] in self.sources)

    def body(self, url: str) -> dict[str, Any]:
        return {"name": self.name, "types": self.types, "sources": self.sources, "url": url}


def subscriptions_for(plan: Plan) -> list[Subscription]:
    """Every event; a type prefix (a third); a type prefix from one source (a sixth)."""
    return [
        Subscription(f"soak-{plan.run}-all", ["soak.*"]),
        Subscription(f"soak-{plan.run}-a", ["soak.a.*"]),
        Subscription(f"soak-{plan.run}-beta-b", ["soak.b.*"], [plan.sources[1]]),
    ]


# --- The webhook receiver -------------------------------------------------------------------------


def verify_signature(secret: str, headers: Any, body: bytes) -> bool:
    """Standard Webhooks, as docs/events.md specifies it (written here again, not imported)."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [part.partition(",")[2] for part in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, candidate) for candidate in given)


class _Hook(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        status = self.server.receiver.receive(self.path, self.headers, body)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    receiver: Receiver


class Receiver:
    """A webhook endpoint that fails a share of the requests on purpose and records what it accepted.

    ``accepted[subscription][event id]`` counts the 2xx answers (more than one: a duplicate).
    It is recorded before the answer is written, so every delivery the platform saw succeed is in it.
    """

    MAX_AGE_S = 300

    def __init__(self, port: int, failure_rate: float, seed: int) -> None:
        self.port = port
        self.failure_rate = failure_rate
        self.secrets: dict[str, str] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.accepted: dict[str, Counter[str]] = defaultdict(Counter)
        self.counts: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server: _ReceiverServer | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def start(self) -> None:
        server = _ReceiverServer(("127.0.0.1", self.port), _Hook)
        server.receiver = self
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        """Stop accepting connections (requests being answered finish)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, path: str, headers: Any, body: bytes) -> int:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        subscription = self.subscriptions.get(name)
        with self._lock:
            self.counts["requests"] += 1
            if subscription is None:
                self.counts["unknown_path"] += 1
                return 404
            if not verify_signature(subscription.secret, headers, body):
                self.counts["bad_signature"] += 1
                return 401
            try:
                stamp = int(headers.get("webhook-timestamp", ""))
            except ValueError:
                stamp = 0
            if abs(time.time() - stamp) > self.MAX_AGE_S:
                self.counts["stale_timestamp"] += 1
                return 400
            event = json.loads(body)
            if not subscription.matches(event):
                self.counts["not_matching"] += 1
            if self._random.random() < self.failure_rate:
                self.counts["failed_on_purpose"] += 1
                return 500
            self.accepted[name][event["id"]] += 1
            self.counts["accepted"] += 1
            return 204

    def unique(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.accepted.values())

    def duplicates(self, name: str) -> int:
        with self._lock:
            return sum(n - 1 for n in self.accepted[name].values())
