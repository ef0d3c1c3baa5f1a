"""The SDK as its own distribution: built from platform_client/, installed ALONE into a clean
virtualenv (no Django, DRF or Celery), its CLI and examples run there against a real platform.

It builds a wheel and installs httpx and websockets from the package index, so it runs when
``PLATFORM_SDK_DIST=1`` (the CI's "SDK alone" step), and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from platform_client._version import __version__
from tests.servers import asgi_platform

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not os.environ.get("PLATFORM_SDK_DIST"), reason="builds and installs the SDK (PLATFORM_SDK_DIST=1)"
)


def run(*args: str | Path, env: dict[str, str] | None = None, check: bool = True, cwd: Path | None = None):
    return subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, env=env, check=check, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def sdk_venv(tmp_path_factory) -> Path:
    """A fresh virtualenv holding micro-platform-client and its dependencies only."""
    base = tmp_path_factory.mktemp("sdk")
    source = base / "source"  # a copy: the build leaves build/ and *.egg-info next to the sources
    shutil.copytree(
        ROOT / "platform_client", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    venv = base / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", source)
    return venv


def test_metadata__own_name_version_and_only_httpx_and_websockets():
    project = tomllib.loads((ROOT / "platform_client" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "micro-platform-client"
    assert project["dependencies"] == ["httpx>=0.27", "websockets>=12"]
    assert {"otel", "redis", "postgres", "memcached"} <= set(project["optional-dependencies"])
    assert project["scripts"]["platform"] == "platform_client.cli._main:main"
    assert (ROOT / "platform_client" / "py.typed").exists()


def test_installed_alone__no_server_code(sdk_venv):
    python = sdk_venv / "bin" / "python"
    installed = json.loads(run(python, "-m", "pip", "list", "--format", "json").stdout)
    names = {package["name"].lower() for package in installed}
    assert "micro-platform-client" in names
    assert not names & {"django", "djangorestframework", "celery", "channels", "micro-platform"}
    probe = (  # every module imports with httpx and websockets alone (the extras load on use)
        "import importlib, importlib.util as u, pkgutil, platform_client, platform_client.cli as c;"
        "names = [f'{p.__name__}.{m.name}' for p in (platform_client, c)"
        " for m in pkgutil.iter_modules(p.__path__)];"
        "[importlib.import_module(name) for name in names];"
        "print(platform_client.__version__, len(names), platform_client.__file__,"
        " [m for m in ('django', 'rest_framework', 'celery', 'platformsite') if u.find_spec(m)])"
    )
    version, count, location, server_modules = run(python, "-c", probe, cwd=sdk_venv).stdout.split(" ", 3)
    assert int(count) >= 30
    assert version == __version__
    assert str(sdk_venv) in location  # the installed copy, not this checkout
    assert server_modules.strip() == "[]"
    assert (Path(location).parent / "py.typed").exists()


def test_cli__service_commands_yes_server_commands_no(sdk_venv):
    platform = sdk_venv / "bin" / "platform"
    assert run(platform, "--version", cwd=sdk_venv).stdout.strip() == f"micro-platform-client {__version__}"
    served = run(platform, "run", check=False, cwd=sdk_venv)
    assert served.returncode == 2
    assert json.loads(served.stderr)["error"]["code"] == "server_not_installed"
    usage = run(platform, "--help", cwd=sdk_venv).stdout
    for group in ("auth", "config", "discovery", "events", "router", "trace"):
        assert group in usage


def test_examples__run_against_a_live_platform(sdk_venv, tmp_path):
    with asgi_platform(tmp_path) as live:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "PLATFORM_URL": live.url,
            "PLATFORM_CLIENT_ID": live.client_id,
            "PLATFORM_CLIENT_SECRET": live.client_secret,
        }
        whoami = run(sdk_venv / "bin" / "platform", "auth", "whoami", env=env, cwd=tmp_path)
        assert json.loads(whoami.stdout)
        result = run(
            sdk_venv / "bin" / "python", ROOT / "examples" / "hello_service.py", env=env, cwd=tmp_path
        )
        answer = json.loads(result.stdout)
        assert answer["greeting"] == "hello, platform"
        assert answer["fence"] == 1 and answer["event"]
        assert len(answer["nodes"]) == 1 and answer["nodes"][0].startswith("hello-")
        wrong = run(
            sdk_venv / "bin" / "python",
            ROOT / "examples" / "hello_service.py",
            env={**env, "PLATFORM_CLIENT_SECRET": "wrong"},
            check=False,
            cwd=tmp_path,
        )
        assert wrong.returncode != 0 and "invalid_client" in wrong.stderr
