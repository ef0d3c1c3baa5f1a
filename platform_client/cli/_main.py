"""``platform`` as the SDK distribution installs it (``micro-platform-client``).

The SDK brings every service's commands (``platform auth|config|discovery|events|...``); the
server's commands (``platform run|serve|manage``) come with the server distribution
(``micro-platform``).  When the server package is installed too, this entry point is the server's
own (``platformsite.cli:main``), so ``platform`` behaves the same whichever package installed it.
"""

from __future__ import annotations

import argparse
import sys

from platform_client._version import __version__
from platform_client.cli import (
    EXIT_USAGE,
    ArgumentParser,
    _error,
    add_connection_options,
    add_service_commands,
    dispatch,
)

#: Commands that need the server's code (Django and the apps).
SERVER_COMMANDS = ("run", "serve", "manage")


def _server_main():  # type: ignore[no-untyped-def]
    try:
        from platformsite.cli import main
    except ImportError:
        return None
    return main


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="platform",
        description="Micro Platform's services from a shell (the SDK's CLI).",
        epilog="platform run|serve|manage come with the server package (pip install micro-platform).",
    )
    parser.add_argument("--version", action="version", version=f"micro-platform-client {__version__}")
    add_connection_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    add_service_commands(commands, parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    server_main = _server_main()
    if server_main is not None:
        return server_main(args)
    if args and args[0] in SERVER_COMMANDS:
        return _error(
            {
                "code": "server_not_installed",
                "message": f"'platform {args[0]}' runs the platform itself: it comes with the server "
                "package (pip install micro-platform); this is the SDK's CLI.",
            },
            EXIT_USAGE,
        )
    options = build_parser().parse_args(args)
    return dispatch(options)


if __name__ == "__main__":
    sys.exit(main())
