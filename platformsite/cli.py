"""``platform``: run the platform and operate it.

``platform run``    the embedded mode: migrate, create the operator account on first run, then
                    serve API, websockets, dashboards, admin and background jobs from one process.
``platform serve``  the production layout: WSGI workers (granian) for HTTP, an ASGI worker
                    (uvicorn) for websockets, and, with Redis, a Celery worker and beat.
``platform manage`` any Django management command.
``platform auth``, ``config``, ``db``, ``discovery``, ``events``, ``monitor``, ``router``, ``trace``
                    each service's API from a shell (see ``platform_client.cli``): --url,
                    --client-id, --client-secret and --scope go before or after the service's
                    name; errors are JSON on stderr, exit 1 (the platform's) or 2 (the command's).
``platform login``  save credentials; ``platform completion`` shell completion;
``platform demo``   three example services that fill the dashboards.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from platformsite.supervisor import Supervisor


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
    import django

    django.setup()


def _manage(*args: str, **options: object) -> None:
    from django.core.management import call_command

    call_command(*args, **options)


def cmd_run(options: argparse.Namespace) -> int:
    os.environ["PLATFORM_INPROCESS_BEAT"] = "1"
    os.environ.setdefault("PLATFORM_ACCESS_LOG", "true")  # a line per request on the console
    _setup_django()
    _manage("migrate", "--no-input", "-v", "0")
    operator = io.StringIO()
    _manage("ensure_operator", stdout=operator)
    import uvicorn

    from platformsite.background import worker

    banner = (
        f"Micro Platform (embedded mode) on http://{options.host}:{options.port}/  "
        f"dashboards /ui/, admin /admin/, API docs /api/docs/. Ctrl-C stops it."
    )

    def show_operator() -> None:
        """The one-time password, printed once: after the start-up logs, or on the way out."""
        if operator.getvalue():
            print(operator.getvalue().strip(), flush=True)
            operator.truncate(0)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # last, after the start-up logs
                print(banner, flush=True)
                show_operator()

    server = Server(
        uvicorn.Config(
            "platformsite.asgi:application",
            host=options.host,
            port=options.port,
            lifespan="off",
            log_config=None,
            access_log=False,  # platform.access writes one line per request, with its duration
            ws_max_size=1 << 20,
            # The caller's address is REMOTE_ADDR unless PLATFORM_TRUSTED_PROXIES says otherwise:
            # uvicorn's own X-Forwarded-For handling (on by default, trusting 127.0.0.1) let any
            # local caller name a new address, and get a new lockout and throttle budget, per request.
            proxy_headers=False,
        )
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        show_operator()  # never lost, even when the server could not start
    if not server.started:
        print(f"Could not serve on {options.host}:{options.port}.", file=sys.stderr, flush=True)
        return 1
    print("Stopped.", flush=True)
    return 0


def _children(options: argparse.Namespace) -> dict[str, list[str]]:
    """The processes of the production layout, named as deploy/Procfile names them."""
    from django.conf import settings

    python = sys.executable
    commands = {
        "web": [
            python,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            options.host,
            "--port",
            str(options.port),
            "--workers",
            str(options.workers),
            "--blocking-threads",
            str(options.threads),
            "--no-ws",
            "platformsite.wsgi:application",
        ],
        "ws": [
            python,
            "-m",
            "uvicorn",
            "platformsite.asgi:application",
            "--host",
            options.host,
            "--port",
            str(options.ws_port),
            "--workers",
            "1",  # one process however WEB_CONCURRENCY is set (uvicorn reads it as its --workers)
            "--lifespan",
            "off",
            "--no-access-log",
            "--no-proxy-headers",  # PLATFORM_TRUSTED_PROXIES decides, as on the WSGI port (see run)
        ],
    }
    if settings.PLATFORM_TASK_MODE == "celery":
        if not options.no_worker:
            commands["worker"] = [
                python,
                "-m",
                "celery",
                "-A",
                "platformsite",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(options.worker_concurrency),
            ]
        if not options.no_beat:
            commands["beat"] = [
                python,
                "-m",
                "celery",
                "-A",
                "platformsite",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(Path(settings.VAR_DIR) / "celerybeat-schedule"),
            ]
    return commands


def cmd_serve(options: argparse.Namespace) -> int:
    _setup_django()
    from django.conf import settings

    if options.migrate:
        _manage("migrate", "--no-input", "-v", "0")
    metrics_dir = Path(tempfile.mkdtemp(prefix="platform-metrics-"))
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    if settings.PLATFORM_TASK_MODE == "thread":
        env["PLATFORM_INPROCESS_BEAT"] = "1"  # the ASGI process runs the schedule
    supervisor = Supervisor(_children(options), env)
    print(
        f"HTTP on http://{options.host}:{options.port}/ ({options.workers} WSGI workers), "
        f"websockets on ws://{options.host}:{options.ws_port}/ws/",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        return supervisor.run(lambda: stopping)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def cmd_manage(options: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platformsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["platform manage", *options.args])
    return 0


def build_parser() -> argparse.ArgumentParser:
    from platform_client.cli import ArgumentParser, add_connection_options, add_service_commands

    parser = ArgumentParser(
        prog="platform", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_connection_options(parser)
    from platform_client._version import __version__ as client_version
    from platformsite.services import VERSION

    version = f"micro-platform {VERSION} (micro-platform-client {client_version})"
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="Run the whole platform in the embedded mode.")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.set_defaults(func=cmd_run)

    serve = commands.add_parser("serve", help="Run the production layout (WSGI + ASGI + Celery).")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--ws-port", type=int, default=int(os.environ.get("WS_PORT", "8001")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    serve.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("WEB_THREADS", "8")),
        help="Threads per WSGI worker: requests that wait (database commits, long-poll watches) hold one.",
    )
    serve.add_argument(
        "--worker-concurrency",
        type=int,
        default=int(os.environ.get("WORKER_CONCURRENCY", "2")),
        help="Processes of the Celery worker (WORKER_CONCURRENCY, as in the Procfile and the units).",
    )
    serve.add_argument("--no-worker", action="store_true", help="Do not start a Celery worker.")
    serve.add_argument("--no-beat", action="store_true", help="Do not start Celery beat.")
    serve.add_argument("--migrate", action="store_true", help="Apply migrations first.")
    serve.set_defaults(func=cmd_serve)

    manage = commands.add_parser("manage", help="Run a Django management command.")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)

    add_service_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from platform_client.cli import dispatch

    sys.path.insert(0, os.getcwd())
    options = build_parser().parse_args(argv)
    return dispatch(options)


if __name__ == "__main__":
    sys.exit(main())
