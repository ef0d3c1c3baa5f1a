"""Call the WSGI application through the hot path, as a WSGI server would, and see who answered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.test import RequestFactory
from django.test.client import ClientHandler

from platformsite.hotpath import HotPath, HotRoute


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    hot: bool  # answered by the hot path: Django never saw the request

    def json(self) -> Any:
        return json.loads(self.body)

    def comparable(self) -> tuple[int, dict[str, str], bytes]:
        """Everything but the request id (new on every call)."""
        return self.status, {k: v for k, v in self.headers.items() if k != "X-Request-ID"}, self.body


class Driver:
    """The platform's WSGI stack with the given hot routes; Django answers through the test
    client's handler (which, like ``django.test.Client``, leaves the test's connection open)."""

    def __init__(self, routes: list[HotRoute]) -> None:
        self.handler = ClientHandler(enforce_csrf_checks=False)
        self.passed = 0
        self.app = HotPath(self._django, routes)

    def _django(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.passed += 1
        response = self.handler(environ)
        start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
        return [response.content]

    def call(self, method: str, path: str, token: str | None = None, **extra: Any) -> Reply:
        """``extra``: RequestFactory.generic's arguments (``data``, ``headers``, ``secure``...)."""
        headers = dict(extra.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        environ = RequestFactory().generic(method, path, headers=headers, **extra).environ
        passed = self.passed
        started: list[Any] = []
        body = b"".join(self.app(environ, lambda status, headers: started.append((status, headers))))
        status, header_list = started[0]
        return Reply(int(status.split()[0]), dict(header_list), body, hot=self.passed == passed)

    def get(self, path: str, token: str | None = None, **extra: Any) -> Reply:
        return self.call("GET", path, token, **extra)

    def warm(self, method: str, path: str, token: str, **extra: Any) -> tuple[Reply, Reply]:
        """The same call twice: the first warms this process's caches through Django."""
        first = self.call(method, path, token, **extra)
        return first, self.call(method, path, token, **extra)
