"""What the three demo services share: each is a small WSGI app served on a free port, built only
with the SDK (``Platform``): it registers in discovery (heartbeats), reports a check and its
endpoint stats to the monitor, emits traces (with the ``otel`` extra), and answers only callers
with a platform token (the SDK middleware)."""

from __future__ import annotations

import os
import socketserver
import sys
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx

from platform_client import Platform


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def traced() -> bool:
    try:
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        return False
    return True


def span(name: str) -> Any:
    """A child span around a piece of work (a no-op without OpenTelemetry)."""
    if not traced():
        import contextlib

        return contextlib.nullcontext()
    from opentelemetry import trace

    return trace.get_tracer("demo").start_as_current_span(name)


def serve(name: str, make_app: Callable[[Platform], Callable]) -> None:
    """Run service ``name`` until stdin closes or the process is terminated."""
    with Platform.from_env(service=name, version="1.0.0") as p:
        if traced():
            p.trace.setup(batch=True)
        app = p.wsgi(make_app(p), trace=traced())
        server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
        port = server.server_port
        p.monitor.register_check(
            "http", lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200, 5
        )
        p.monitor.start()
        p.register("127.0.0.1", port, metadata={"demo": "true"}, interval=5)
        p.events.publish("demo.started", {"service": name, "node": p.node, "port": port})
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        print(f"{name} on http://127.0.0.1:{port}/ as {p.node}", flush=True)
        stop = threading.Event()
        if os.environ.get("DEMO_STDIN_STOPS", "1") == "1":
            threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()


def json_response(start_response: Callable, body: bytes, status: str = "200 OK") -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
