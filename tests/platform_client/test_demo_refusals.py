"""``platform demo`` where it cannot run as it should: without the OpenTelemetry SDK it says so and
runs untraced; with no platform to reach it says which URL did not answer, without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The fleet as ``platform demo`` runs it, with ``opentelemetry`` made unimportable (as in an SDK
#: installed without the ``otel`` extra).
WITHOUT_OTEL = (
    "import runpy, sys; sys.modules['opentelemetry'] = None; sys.path.insert(0, 'examples/demo'); "
    "sys.argv = ['fleet.py', '--requests', '1']; "
    "runpy.run_path('examples/demo/fleet.py', run_name='__main__')"
)


def test_demo__without_opentelemetry_and_no_platform__says_both_and_exits_1():
    # find_spec("opentelemetry.sdk") raised ModuleNotFoundError when opentelemetry was missing,
    # and an unreachable platform ended in httpx's traceback
    env = {
        **os.environ,
        "PLATFORM_URL": "http://127.0.0.1:9",
        "PLATFORM_CLIENT_ID": "demo",
        "PLATFORM_CLIENT_SECRET": "secret",
    }
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 1, done.stderr
    assert "demo: no traces: the OpenTelemetry SDK is not installed" in done.stderr
    assert "demo: the platform at http://127.0.0.1:9 did not answer" in done.stderr
    assert "Traceback" not in done.stderr
