"""``platform demo``: the three demo services and a load on the gateway.

    python examples/demo/fleet.py [--requests N] [--flaky on|off] [--interval 0.1]

Creates the config namespaces ``demo-customers`` (``slow_ms``) and ``demo-drivers`` (``flaky``)
when missing, starts ``customers.py``, ``drivers.py`` and ``gateway.py`` (each with the
``PLATFORM_*`` credentials of this process), then calls ``GET /dispatch`` on the gateway every
``interval`` seconds, ``requests`` times (or until Ctrl-C), and stops the services.  Customer 7
is the slow path; ``--flaky on`` (or ``platform config set demo-drivers flaky true`` while it
runs) makes the drivers backend fail a third of its calls.  Traces need the OpenTelemetry SDK
(the ``otel`` extra); without it the fleet runs untraced and says so.  Ctrl-C or SIGTERM stops
the services too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import traced

from platform_client import PlatformError, PlatformSession

HERE = Path(__file__).resolve().parent
CONFIG = "/api/v1/config/namespaces/"


def ensure_config(session: PlatformSession, name: str, data: dict, *, overwrite: bool) -> None:
    try:
        session.call("POST", CONFIG, json={"name": name, "description": "platform demo"})
        created = True
    except PlatformError as exc:
        if exc.code != "namespace_exists":  # a namespace made by an earlier run
            raise
        created = False
    if created or overwrite:
        session.call(
            "PUT", f"{CONFIG}{name}/layers/default/", json={"data": data, "comment": "demo", "source": "demo"}
        )


def start(script: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(  # noqa: S603 - our own scripts, beside this one
        [sys.executable, str(HERE / script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{script} exited with {proc.wait()}")
    return proc, line.split()[2]


class _Stopped(BaseException):  # not caught by the loop's "except Exception"
    """SIGTERM: a graceful stop (exit 0); Ctrl-C exits 130, as the CLI's other commands do."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=None, help="Stop after this many (default: Ctrl-C).")
    parser.add_argument("--flaky", choices=["on", "off"], default=None)
    parser.add_argument("--interval", type=float, default=0.1)
    options = parser.parse_args(argv)
    if not traced():
        print(
            "demo: no traces: the OpenTelemetry SDK is not installed "
            '(pip install -e ".[otel]" in the platform, or micro-platform-client[otel])',
            file=sys.stderr,
            flush=True,
        )
    signal.signal(signal.SIGTERM, _stopped)  # stop the services as Ctrl-C does
    session = PlatformSession()
    try:
        ensure_config(session, "demo-customers", {"slow_ms": 400}, overwrite=False)
        flaky = options.flaky == "on"
        ensure_config(session, "demo-drivers", {"flaky": flaky}, overwrite=options.flaky is not None)
    except (PlatformError, httpx.HTTPError) as exc:  # not started: nothing to stop
        print(f"demo: the platform at {session.base_url} did not answer: {exc}", file=sys.stderr, flush=True)
        session.close()
        return 1
    procs = []
    counts: dict[str, int] = {}
    code = 0
    try:
        for script in ("customers.py", "drivers.py"):
            procs.append(start(script)[0])
        gateway, url = start("gateway.py")
        procs.append(gateway)
        print(f"demo: gateway on {url}; Ctrl-C stops", file=sys.stderr, flush=True)
        numbers = range(options.requests) if options.requests is not None else itertools.count()
        for number in numbers:
            try:  # the platform's token goes to the gateway too: it checks platform tokens
                response = session.get(f"{url}dispatch", params={"customer": number % 10}, timeout=10)
                key = str(response.status_code)
            except Exception as exc:  # the gateway is ours: count and go on
                key = type(exc).__name__
            counts[key] = counts.get(key, 0) + 1
            time.sleep(options.interval)
    except KeyboardInterrupt:
        code = 130
    except _Stopped:
        pass
    finally:
        for proc in reversed(procs):  # the gateway first: its last stats name live backends
            proc.stdin.close()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        session.close()
    print(json.dumps({"requests": sum(counts.values()), "answers": counts}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
