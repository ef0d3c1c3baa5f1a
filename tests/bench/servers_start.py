"""The servers a benchmark run starts: the platform in its production layout, the bare view, etcd."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shlex
import subprocess
import urllib.parse

from tests.bench import scenarios as scenario_list
from tests.bench.harness import (
    PYTHON,
    ROOT,
    BenchError,
    Server,
    free_port,
    http,
)

#: Threads per WSGI worker (granian --blocking-threads), as ``platform serve --threads`` sets them.
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
#: More granian options for the platform's server (e.g. "--runtime-threads 2"), to compare layouts.
SERVER_ARGS = shlex.split(os.environ.get("BENCH_SERVER_ARGS", ""))


def granian_wsgi(app: str, port: int, workers: int, threads: int = 1) -> list[str]:
    """The production HTTP server command (as ``platform serve`` runs it)."""
    return [
        PYTHON,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        app,
    ]


def platform_server(kind: str, port: int, workers: int) -> tuple[str, list[str]]:
    """The platform's server command: the production layout, or an alternative to compare it with."""
    if kind == "granian-wsgi":
        command = granian_wsgi("platformsite.wsgi:application", port, workers, THREADS)
        return "platformsite.wsgi:application", command[:-1] + SERVER_ARGS + command[-1:]
    if kind == "uvicorn-asgi":  # what the embedded mode and the websocket workers run
        app = "platformsite.asgi:application"
        return app, [
            PYTHON,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    if kind == "granian-asgi":
        app = "platformsite.asgi:application"
        return app, [
            PYTHON,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            app,
        ]
    raise BenchError(f"unknown server {kind!r}")


def _clean_env() -> dict[str, str]:
    """This process's environment without settings that would redirect a child server."""
    drop = ("DJANGO_SETTINGS_MODULE", "PLATFORM_SERVICE", "PLATFORM_SERVICE_WEB", "PLATFORM_INPROCESS_BEAT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("GRANIAN_")}


def _db_engine(url: str) -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith(("postgres", "pgsql", "psql")):
        return "postgresql"
    return scheme or "unknown"


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


class PlatformServers:
    """Starting the servers of a run (mixed into ``Bench``, which holds their state)."""

    def start_platform(self, scopes: set[str]) -> None:
        var_dir = self.tmp / "platform"
        metrics_dir = self.tmp / "metrics"
        var_dir.mkdir(parents=True, exist_ok=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = _clean_env()
        fresh_db = "DATABASE_URL" not in env
        env.update(
            DJANGO_SETTINGS_MODULE=self.args.settings,
            PLATFORM_ENV="production",
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(45),  # 60 random characters
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECURE_SSL_REDIRECT="false",
            PLATFORM_VAR_DIR=str(var_dir),
            # As `platform serve` does: metrics shared by the workers through files.
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        )
        env.setdefault("DATABASE_URL", f"sqlite:///{var_dir / 'platform.sqlite3'}")
        # The throttle still counts every call (its cost is measured), but never refuses one.
        env.setdefault("PLATFORM_THROTTLE_CLIENT", "1000000000/min")
        env.setdefault("MONITOR_PING_RATE", "1000000000/min")
        env.setdefault("MONITOR_PING_CHECK_RATE", "1000000000/min")

        print("platform: migrate ...", flush=True)
        self._manage(env, "migrate", "--no-input", "-v", "0")
        account = "bench" if fresh_db else f"bench-{secrets.token_hex(4)}"
        out = self._manage(env, "create_service_account", account, "--scopes", " ".join(sorted(scopes)))
        try:
            creds = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
        except (StopIteration, json.JSONDecodeError) as exc:
            raise BenchError(f"create_service_account printed no JSON:\n{out}") from exc

        port = free_port()
        app, command = platform_server(self.args.server, port, self.args.workers)
        server = Server(
            name="platform",
            command=command,
            env=env,
            log_path=self.tmp / "platform.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers["platform"] = server.start()
        server.wait_ready(lambda: http(server.base_url + "/healthz", timeout=2).status == 200)
        self.values["token"] = self._token(server, creds, scopes)
        self.values["basic"] = base64.b64encode(
            f"{creds['client_id']}:{creds['client_secret']}".encode()
        ).decode()
        for scenario in self.select():
            if scenario.target == "platform" and scenario.setup:
                print(f"platform: setting up {scenario.name} ...", flush=True)
                self._manage(env, "shell", "-c", scenario.setup.replace("{account}", account))
        self.configs["platform"] = {
            "server": self.args.server,
            "workers": self.args.workers,
            "blocking_threads": THREADS,
            "app": app,
            "command": " ".join(server.command[1:]),
            "platform_env": "production",
            "settings": self.args.settings,
            "database": _db_engine(env["DATABASE_URL"]),
            "database_url": _redact(env["DATABASE_URL"]) if not fresh_db else "sqlite (temporary)",
            "cache": "redis" if env.get("REDIS_URL") else "locmem",
            "throttle_client": env["PLATFORM_THROTTLE_CLIENT"],
            "prometheus_multiprocess": True,
        }

    def _manage(self, env: dict[str, str], *args: str) -> str:
        proc = subprocess.run(
            [PYTHON, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        if proc.returncode != 0:
            raise BenchError(f"manage.py {args[0]} failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
        return proc.stdout

    @staticmethod
    def _token(server: Server, creds: dict[str, str], scopes: set[str]) -> str:
        basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": " ".join(sorted(scopes))})
        answer = http(
            server.base_url + "/o/token/",
            method="POST",
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            body=body.encode(),
        )
        if answer.status != 200:
            raise BenchError(
                f"POST /o/token/ answered {answer.status}: {answer.body[:500]!r}\n"
                f"{server.name} logged:\n{server.log_errors()}"
            )
        return json.loads(answer.body)["access_token"]

    def start_bare(self) -> None:
        port = free_port()
        app = "tests.bench.bare:application"
        env = _clean_env()
        env["DJANGO_SETTINGS_MODULE"] = "tests.bench.bare"
        server = Server(
            name="bare",
            command=granian_wsgi(app, port, self.args.workers),
            env=env,
            log_path=self.tmp / "bare.log",
            base_url=f"http://127.0.0.1:{port}",
        )
        self.servers["bare"] = server.start()
        server.wait_ready(lambda: http(server.base_url + "/bare/16", timeout=2).status == 200)
        self.configs["bare"] = {
            "server": self.args.server,
            "workers": self.args.workers,
            "blocking_threads": THREADS,
            "app": app,
            "command": " ".join(server.command[1:]),
            "django": "DEBUG off, no installed apps, no middleware, no auth; JsonResponse",
        }

    def start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        data_dir = self.tmp / "etcd"
        command = [
            "etcd",
            "--name",
            "bench",
            "--data-dir",
            str(data_dir),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"bench=http://127.0.0.1:{peer}",
            "--initial-cluster-state",
            "new",
            "--logger",
            "zap",
            "--log-level",
            "warn",
        ]
        env = {k: v for k, v in _clean_env().items() if not k.startswith("ETCD")}
        server = Server("etcd", command, env, self.tmp / "etcd.log", f"http://127.0.0.1:{client}")
        self.servers["etcd"] = server.start()
        server.wait_ready(lambda: b"true" in http(server.base_url + "/health", timeout=2).body)
        put = json.dumps({"key": self.values["etcd_key_b64"], "value": self.values["etcd_value_b64"]})
        answer = http(
            server.base_url + "/v3/kv/put",
            method="POST",
            headers={"Content-Type": "application/json"},
            body=put.encode(),
        )
        if answer.status != 200:
            raise BenchError(f"etcd put answered {answer.status}: {answer.body[:300]!r}")
        version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.splitlines()
        self.configs["etcd"] = {
            "server": version[0] if version else "etcd",
            "members": 1,
            "api": "v3 HTTP/JSON gateway",
            "value_bytes": len(scenario_list.ETCD_VALUE),
        }
