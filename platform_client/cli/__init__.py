"""The ``platform <service> ...`` commands: the platform's API from a shell.

They connect with ``--url`` (or ``PLATFORM_URL``) as the service account in ``--client-id`` /
``--client-secret`` (or ``PLATFORM_CLIENT_ID`` / ``PLATFORM_CLIENT_SECRET``, or the file
``platform login`` saves, ``~/.config/platform/credentials``); these options go
before or after the service's name (``platform --url U auth whoami`` or ``platform auth --url U
whoami``). They print a table on a terminal and JSON otherwise (``--output table|json``), and
every error as one JSON object on stderr, ``{"error": {"code": ..., "message": ...}}``,
with these exit statuses:

* 0: done (``auth check``: allowed);
* 1: the platform answered an error (its status and code are in the object), is unreachable
  (``unreachable``), or a file named on the command line cannot be read (``os_error``);
  ``auth check`` also exits 1 when the answer is "deny";
* 2: the command itself is wrong: arguments the parser refuses (``usage``), no credentials
  (``missing_credentials``), an input the command cannot use (``invalid_input``);
* 130: interrupted (Ctrl-C);
* 141: the reader of the output went away first (``platform events search | head``), silently.

Each service's commands live in ``platform_client/cli/<service>.py`` with an
``add_commands(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any, NoReturn

import httpx

from platform_client import credentials
from platform_client.cli import _extras
from platform_client.session import PlatformError, PlatformSession, platform_urls


def service_modules() -> list[str]:
    """The command groups: each ``platform_client/cli/<service>.py`` (adding one needs no list)."""
    return sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))


def add_service_commands(
    commands: argparse._SubParsersAction, root: argparse.ArgumentParser | None = None
) -> list[str]:
    """Add every service's command group, then ``login`` and ``completion`` (of ``root``);
    returns the service groups' names."""
    added = []
    for name in service_modules():
        import_module(f"platform_client.cli.{name}").add_commands(commands)
        commands.choices[name].set_defaults(func=run)
        _output_on_each_verb(commands.choices[name])
        added.append(name)
    _extras.add_commands(commands, root)
    return added


def _output_on_each_verb(parser: argparse.ArgumentParser) -> None:
    """``--output`` after the verb too (``platform events search ... --output json``)."""
    verbs = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not verbs:
        if "--output" not in parser._option_string_actions:
            parser.add_argument(
                "--output", choices=["table", "json"], default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
        return
    for verb in verbs:
        for child in dict.fromkeys(verb.choices.values()):  # aliases share their parser
            _output_on_each_verb(child)


#: Exit statuses (see the module's docstring).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: stdout closed before everything was written (``platform ... | head``), as a process killed by SIGPIPE.
EXIT_PIPE_CLOSED = 141


class UsageError(Exception):
    """The command cannot run as given: printed as ``{"error": {"code": code, ...}}``, exit 2."""

    def __init__(self, message: str, code: str = "usage") -> None:
        super().__init__(message)
        self.code = code


def require_name(options: argparse.Namespace, what: str, attribute: str = "name") -> None:
    """Every action but ``list`` names its object: without the name a request would go to
    ``.../None/`` (a 404 about something named 'None', or a delete of it): a usage error."""
    if options.action != "list" and getattr(options, attribute) in (None, ""):
        raise UsageError(f"{what} {options.action} needs the {what[:-1]}'s {attribute.upper()}")


def json_file(text: str, option: str) -> Any:
    """The JSON a file given to ``option`` holds; a file that is not JSON is refused (exit 2)."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{option} is not JSON: {exc}", "invalid_input") from None


def json_or_text(raw: str, option: str, text_hint: str) -> Any:
    """A command-line value read as JSON, else as plain text (``hello`` is the string "hello").

    A value that starts as JSON does (``{``, ``[`` or ``"``) but does not parse is a typo, not
    text: it is refused (exit 2), naming ``option`` and how to send it as text instead.
    """
    try:
        return json.loads(raw)
    except ValueError as exc:
        if raw.lstrip()[:1] in ("{", "[", '"'):
            raise UsageError(
                f"{option} looks like JSON but is not ({exc}); {text_hint}", "invalid_input"
            ) from None
        return raw


class ArgumentParser(argparse.ArgumentParser):
    """Reports a command line it refuses as a JSON error on stderr (exit 2), like every other error;
    a command's options may come between its arguments."""

    def error(self, message: str) -> NoReturn:
        _error({"code": "usage", "message": message, "details": {"usage": self.format_usage().strip()}})
        raise SystemExit(EXIT_USAGE)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """argparse's, except that an option may come before a command's optional arguments
        (``config set payments --merge db '{...}'``): argparse gives those (``nargs="?"``) nothing
        once an option comes first, then refuses the rest, with the top command's usage.  The
        command's own words are read again, options and arguments intermixed."""
        options, extras = self.parse_known_args(args, namespace)
        if not extras:
            return options
        command, words = self, []
        while (chosen := _chosen(command, options)) is not None:
            command = chosen[1]
            words.append(chosen[0])
        given = list(sys.argv[1:] if args is None else args)
        start = next(
            (i + len(words) for i in range(len(given)) if words and given[i : i + len(words)] == words), None
        )
        rest = iter(given[start:] if start is not None else ())
        if command is self or not all(token in rest for token in extras):  # not all the command's own
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        try:
            return command.parse_intermixed_args(given[start:], namespace=options)
        except TypeError:  # a command intermixing cannot read (argparse.REMAINDER)
            command.error(f"unrecognized arguments: {' '.join(extras)}")


def _chosen(parser: argparse.ArgumentParser, options: argparse.Namespace) -> tuple[str, Any] | None:
    """The subcommand of ``parser`` the command line chose (its word and parser), if any."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            word = getattr(options, action.dest or "", None)
            if word in action.choices:
                return word, action.choices[word]
    return None


def _session(options: argparse.Namespace) -> PlatformSession:
    # Options left out are absent (argparse.SUPPRESS): the session reads PLATFORM_* then, and
    # what neither gives comes from ~/.config/platform/credentials (``platform login``).
    given = {
        "url": getattr(options, "url", None) or os.environ.get("PLATFORM_URL"),
        "client_id": getattr(options, "client_id", None) or os.environ.get("PLATFORM_CLIENT_ID"),
        "client_secret": getattr(options, "client_secret", None) or os.environ.get("PLATFORM_CLIENT_SECRET"),
    }
    if not all(given.values()):
        saved = credentials.load()
        given = {key: value or saved.get(key) for key, value in given.items()}
    try:
        platform_urls(given["url"])
    except ValueError as exc:
        raise UsageError(
            f"{exc} (from --url, PLATFORM_URL or `platform login`)", code="invalid_input"
        ) from exc
    try:
        return PlatformSession(
            given["url"],
            given["client_id"],
            given["client_secret"],
            scopes=getattr(options, "scope", None) or None,
        )
    except ValueError as exc:
        raise UsageError(str(exc), code="missing_credentials") from exc


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def metadata_pairs(pairs: list[str], option: str = "--metadata") -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"{option} takes key=value, got {pair!r}")
        metadata[key] = value
    return metadata


def list_all(
    session: PlatformSession, path: str, params: dict | None = None, *, limit: int | None = None
) -> list[dict]:
    """Every item of a cursor-paged list (the first ``limit`` of them), following ``next``."""
    items: list[dict] = []
    if limit is not None:
        params = {**(params or {}), "page_size": str(min(limit, 1000))}
    page = session.call("GET", path, params=params)
    while True:
        items += page["results"]
        if limit is not None and len(items) >= limit:
            return items[:limit]
        if not page.get("next"):
            return items
        page = session.call("GET", page["next"])


def count(text: str) -> int:
    """A ``--limit``: a whole number from 1 (argparse's type, so anything else is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number from 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number from 1, got {value}")
    return value


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--client-id``, ``--client-secret``, ``--scope``: on ``platform`` itself and on
    each service's group, so they work before or after the group's name (after it wins)."""
    group = parser.add_argument_group("connection (before or after the service's name)")
    group.add_argument(
        "--url", default=argparse.SUPPRESS, help="The platform (PLATFORM_URL, http://127.0.0.1:8000)."
    )
    group.add_argument("--client-id", default=argparse.SUPPRESS, help="PLATFORM_CLIENT_ID")
    group.add_argument("--client-secret", default=argparse.SUPPRESS, help="PLATFORM_CLIENT_SECRET")
    group.add_argument(
        "--scope", action="append", default=argparse.SUPPRESS, help="Ask for this scope only (repeatable)."
    )
    group.add_argument(
        "--output",
        choices=["table", "json"],
        default=argparse.SUPPRESS,
        help="How answers are printed (default: table on a terminal, JSON otherwise).",
    )


def dispatch(options: argparse.Namespace) -> int:
    """Run the parsed command: ``options.func``, with a closed stdout ending it quietly."""
    try:
        code = options.func(options)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        # What is left in the buffer can no longer be written: point stdout at /dev/null, so that
        # flushing it at exit does not raise again (the way Python's documentation advises).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


def _error(error: dict[str, Any], status: int = EXIT_ERROR) -> int:
    """Print an error in the API's shape on stderr; returns the exit status."""
    json.dump({"error": error}, sys.stderr)
    sys.stderr.write("\n")
    return status


def run(options: argparse.Namespace) -> int:
    handler: Callable[[PlatformSession, argparse.Namespace], Any] = options.handler
    try:
        with _session(options) as session:
            result = handler(session, options)
    except PlatformError as exc:
        error = {"status": exc.status, "code": exc.code, "message": exc.message, "details": exc.details}
        if exc.retry_after is not None:  # a 429 or 503: when a script may try again
            error["retry_after"] = exc.retry_after
        return _error(error)
    except httpx.HTTPError as exc:  # the platform is unreachable, slow, or answered nonsense
        return _error({"code": "unreachable", "message": f"{type(exc).__name__}: {exc}"})
    except OSError as exc:  # a file named on the command line
        return _error({"code": "os_error", "message": str(exc)})
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except UsageError as exc:
        return _error({"code": exc.code, "message": str(exc)}, EXIT_USAGE)
    except (ValueError, OverflowError) as exc:  # an argument or a file's content the command cannot use
        return _error({"code": "invalid_input", "message": str(exc)}, EXIT_USAGE)
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a handler refusing its arguments
            return _error({"code": "usage", "message": exc.code}, EXIT_USAGE)
        raise
    if isinstance(result, str):
        sys.stdout.write(result + "\n")
    elif _extras.output_format(options) == "table":
        view = getattr(options, "table_view", None)  # a group's readable form of its answers
        sys.stdout.write(_extras.table(view(result) if view else result) + "\n")
    else:
        print_json(result)
    return getattr(options, "exit_code", 0)
