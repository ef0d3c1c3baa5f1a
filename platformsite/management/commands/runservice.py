"""``manage.py runservice NAME [--port N] [--web]``: serve one platform service alone.

The process serves only that service's API (``/api/v1/NAME/``) plus ``/healthz``, ``/readyz``
and ``/metrics`` (and ``/o/`` for ``auth``); ``--web`` adds its dashboard under ``/ui/``.  It
shares the database, cache and broker with the rest of the platform, so tokens issued anywhere
work here.
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from platformsite.services import service_names


class Command(BaseCommand):
    help = "Serve one platform service's API alone (ASGI, websockets included)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help=f"One of: {', '.join(service_names())}")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web", action="store_true", help="Also serve the service's dashboard.")

    def command_line(self, name: str, host: str, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "platformsite.asgi:application",
            "--host",
            host,
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--no-access-log",
        ]

    def handle(self, *args, name: str, host: str, port: int, web: bool, **options) -> None:
        if name not in service_names():
            raise CommandError(f"Unknown service {name!r}; choose one of: {', '.join(service_names())}")
        env = dict(
            os.environ,
            PLATFORM_SERVICE=name,
            PLATFORM_SERVICE_WEB="1" if web else "0",
            PLATFORM_SERVICE_ADDRESS=host,
            PLATFORM_SERVICE_PORT=str(port),
        )
        self.stdout.write(f"Serving platform.{name} on http://{host}:{port}/api/v1/{name}/")
        self.stdout.flush()
        command = self.command_line(name, host, port)
        os.execve(command[0], command, env)  # noqa: S606
