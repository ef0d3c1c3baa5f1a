"""``platform demo`` end to end: the three example services (built only with the SDK) against the
whole platform under uvicorn; afterwards the platform holds what the dashboards show: the
services' events, their traces across the three services, and the slow path findable by
duration, and the monitor's checks reported by each service."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from platform_client import PlatformSession, trace
from tests.servers import asgi_platform

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("opentelemetry.sdk")


def test_platform_demo__services_events_traces_and_the_slow_path(tmp_path):
    with asgi_platform(tmp_path) as live:
        env = {
            **os.environ,
            "PLATFORM_URL": live.url,
            "PLATFORM_CLIENT_ID": live.client_id,
            "PLATFORM_CLIENT_SECRET": live.client_secret,
        }
        command = [
            sys.executable,
            "-m",
            "platform_client.cli._main",
            "demo",
            "--requests",
            "20",
            "--interval",
            "0.05",
        ]
        # The slow path far slower than its 400 ms default: on a loaded machine an ordinary request
        # can take a few hundred milliseconds, never a second and a half.
        with PlatformSession(live.url, live.client_id, live.client_secret) as session:
            session.call("POST", "/api/v1/config/namespaces/", json={"name": "demo-customers"})
            layer = "/api/v1/config/namespaces/demo-customers/layers/default/"
            session.call("PUT", layer, json={"data": {"slow_ms": 1500}, "comment": "test"})
        done = subprocess.run(
            [*command, "--flaky", "on"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["requests"] == 20 and summary["answers"].get("200", 0) >= 1
        session = PlatformSession(live.url, live.client_id, live.client_secret)
        started = session.call("GET", "/api/v1/events/", params={"type": "demo.started"})["results"]
        assert {event["source"] for event in started} == {"demo-gateway", "demo-customers", "demo-drivers"}
        dispatched = session.call("GET", "/api/v1/events/", params={"type": "demo.dispatched"})["results"]
        assert len(dispatched) == summary["answers"]["200"]
        flaky = session.call("GET", "/api/v1/config/namespaces/demo-drivers/resolve")["data"]
        assert flaky == {"flaky": True}
        deadline = time.monotonic() + 30  # spans are exported in batches
        while time.monotonic() < deadline and len(trace.search(session, service="demo-gateway")) < 20:
            time.sleep(0.5)
        assert len(trace.search(session, service="demo-gateway")) == 20
        slow = trace.search(session, service="demo-gateway", min_duration_ms=1200)
        assert len(slow) == 2  # customers 7 and 17 % 10: the deliberate slow path, twice
        spans = trace.get(session, slow[0]["trace_id"])
        text = json.dumps(spans)
        assert "customers.lookup" in text and "demo-customers" in text and "demo-drivers" in text
        registered = session.call("GET", "/api/v1/events/", params={"type": "discovery.node.registered"})
        assert len(registered["results"]) == 3  # one node a service, registered once
        monitored = session.call("GET", "/api/v1/monitor/services/")["results"]
        checks = {service["name"]: service["checks"]["passing"] for service in monitored}
        assert checks == {"demo-gateway": 1, "demo-customers": 1, "demo-drivers": 1}  # each one's http check
        session.close()

        # Again on the same platform (its namespaces exist now), stopped by SIGTERM this time.
        fleet = subprocess.Popen(
            command[:-4], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            for line in fleet.stderr:  # the services are up once the gateway is
                if line.startswith("demo: gateway on"):
                    break
            # The flaky switch followed live: the drivers see the change through a config watch.
            with PlatformSession(live.url, live.client_id, live.client_secret) as session:
                layer = "/api/v1/config/namespaces/demo-drivers/layers/default/"
                session.call("PUT", layer, json={"data": {"flaky": False}, "comment": "test"})
                deadline = time.monotonic() + 20
                switched: list = []
                while time.monotonic() < deadline and not switched:
                    switched = session.call("GET", "/api/v1/events/", params={"type": "demo.flaky"})[
                        "results"
                    ]
                    time.sleep(0.2)
            assert [event["data"]["flaky"] for event in switched] == [False] * len(switched) != []
            fleet.send_signal(signal.SIGTERM)
            out, _ = fleet.communicate(timeout=60)
        finally:
            if fleet.poll() is None:
                fleet.kill()
        assert fleet.returncode == 0 and json.loads(out.strip().splitlines()[-1])["requests"] >= 1
        assert not _demo_services_running(), "a demo service outlived the fleet"


def _demo_services_running() -> list[str]:
    scripts = [
        str(ROOT / "examples" / "demo" / name) for name in ("customers.py", "drivers.py", "gateway.py")
    ]
    running = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        running += [arg.decode() for arg in command if arg.decode(errors="replace") in scripts]
    return running


@pytest.mark.django_db(transaction=True)
def test_demo_config__a_second_run_keeps_the_namespace_unless_told_to_overwrite(
    live_server, service_account, monkeypatch
):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "demo"))  # as when it runs: its folder first
    spec = importlib.util.spec_from_file_location("demo_fleet", ROOT / "examples" / "demo" / "fleet.py")
    fleet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fleet)
    client_id, secret = service_account("config:read", "config:write")
    namespace = "/api/v1/config/namespaces/demo-drivers/"
    with PlatformSession(live_server.url, client_id, secret) as session:
        fleet.ensure_config(session, "demo-drivers", {"flaky": False}, overwrite=False)
        session.call("PUT", namespace + "layers/default/", json={"data": {"flaky": True}})
        fleet.ensure_config(session, "demo-drivers", {"flaky": False}, overwrite=False)  # the name exists
        assert session.call("GET", namespace + "resolve")["data"] == {"flaky": True}
        fleet.ensure_config(session, "demo-drivers", {"flaky": False}, overwrite=True)
        assert session.call("GET", namespace + "resolve")["data"] == {"flaky": False}


def test_gateway__a_backend_it_cannot_call__503_saying_why(monkeypatch):
    # it raised, and the demo server printed a traceback per request (91,000 lines in five
    # minutes while its account was disabled)
    from platform_client.router import NoRoute

    monkeypatch.syspath_prepend(str(ROOT / "examples" / "demo"))
    import gateway

    class Unroutable:
        def request(self, method, path):
            raise NoRoute("demo-customers")

    class Fleet:
        def client(self, service, **options):
            return Unroutable()

    answered = []
    body = gateway.make_app(Fleet())(
        {"PATH_INFO": "/dispatch"}, lambda status, headers: answered.append(status)
    )
    assert answered == ["503 Service Unavailable"]
    assert json.loads(b"".join(body)) == {
        "error": "NoRoute: 503 no_route: No node of 'demo-customers' to call."
    }
