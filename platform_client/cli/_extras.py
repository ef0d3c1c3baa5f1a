"""What the CLI has beside the service groups: ``--output table``, ``platform login`` and
``platform completion``."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from platform_client import credentials

#: The widest cell: a SHA-256 in hex (a config checksum) fits whole.
MAX_CELL = 64
MAX_COLUMNS = 8


def _cell(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict) and value and all(_scalar(v) for v in value.values()):
        text = ", ".join(f"{key}={_cell(v)}" for key, v in value.items())  # {"passing": 2} as passing=2
    elif isinstance(value, list) and all(_scalar(v) for v in value):
        text = ", ".join(_cell(v) for v in value)
    else:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _rows(value: Any) -> bool:
    """A non-empty list of objects: shown as a table of its own."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _lines(value: Any) -> bool:
    """A list of strings too long for one cell (an explanation): shown one a line."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, str) for item in value)
        and (len(_cell(value)) >= MAX_CELL)
    )


def _long_text(value: Any) -> bool:
    """A string too long for a cell (a token, a check's output): shown whole, under its name."""
    return isinstance(value, str) and (len(value) > MAX_CELL or "\n" in value)


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def table(data: Any) -> str:
    """A list of objects as columns, an object as KEY/VALUE lines, anything else as it is; an
    empty list as ``(none)``, so that a terminal shows the command ran.

    What would not fit a cell gets a section of its own below, under its name: a list of objects
    (an object's ``nodes``, a row's ``checks``) as a table, each row of a nested list led by its
    parent's first column; a long list of strings one a line; an object's long text (a token)
    whole. In a table of rows, a cell is cut at ``MAX_CELL`` characters (``…``)."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        count = data.get("count")  # asked for (db query --count): said below the rows
        shown = table(data["results"])
        return shown if count is None else f"{shown}\n\ncount: {_cell(count)}"
    if data == []:
        return "(none)"
    if _rows(data):
        return "\n\n".join(_sections(data, ""))
    if isinstance(data, dict):
        shown = {
            key: value
            for key, value in data.items()
            if not (_rows(value) or _lines(value) or _long_text(value))
        }
        parts = (
            [_grid(["KEY", "VALUE"], [[str(key), _cell(value)] for key, value in shown.items()])]
            if shown
            else []
        )
        for key, value in data.items():
            if _rows(value):
                parts += _sections(value, key.upper())
            elif _lines(value):
                parts.append("\n".join([key.upper(), *value]))
            elif _long_text(value):
                parts.append(f"{key.upper()}\n{value}")
        return "\n\n".join(parts)
    if isinstance(data, list):
        return "\n".join(_cell(item) for item in data)
    return _cell(data)


def _sections(rows: list[dict], title: str) -> list[str]:
    """``rows`` as a table (titled), then a table per column of nested rows (``TITLE: COLUMN``)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    nested = [key for key in columns if any(_rows(row.get(key)) for row in rows)]
    flat = [key for key in columns if key not in nested][:MAX_COLUMNS]
    sections = []
    if flat:
        grid = _grid(
            [key.upper() for key in flat], [[_cell(row.get(key, "")) for key in flat] for row in rows]
        )
        sections.append(f"{title}\n{grid}" if title else grid)
    lead = flat[0] if flat else None
    for key in nested:
        pairs = [(row, child) for row in rows if _rows(row.get(key)) for child in row[key]]
        # The parent's first column leads each nested row (unless they hold it already), named
        # after the parent when the nested rows have another column of that name.
        if lead is None or all(child.get(lead) == row.get(lead) for row, child in pairs):
            children = [child for _, child in pairs]
        else:
            named = (
                lead
                if not any(lead in child for _, child in pairs)
                else f"{title.split(': ')[-1].lower() or 'parent'}.{lead}"
            )
            children = [{named: row.get(lead), **child} for row, child in pairs]
        sections += _sections(children, f"{title}: {key.upper()}" if title else key.upper())
    return sections


def output_format(options: argparse.Namespace) -> str:
    """``--output``, else table on a terminal and JSON into a pipe or a file."""
    chosen = getattr(options, "output", None)
    return chosen or ("table" if sys.stdout.isatty() else "json")


# --- platform login --------------------------------------------------------------------------------


def cmd_login(options: argparse.Namespace) -> int:
    from platform_client.cli import EXIT_USAGE, _error
    from platform_client.session import PlatformError, PlatformSession, platform_urls

    url = getattr(options, "url", None) or os.environ.get("PLATFORM_URL") or "http://127.0.0.1:8000"
    client_id = getattr(options, "client_id", None) or os.environ.get("PLATFORM_CLIENT_ID")
    secret, source = getattr(options, "client_secret", None), "--client-secret"
    if not secret and os.environ.get("PLATFORM_CLIENT_SECRET"):
        # the answer says so: a secret piped in is not read then
        secret, source = os.environ["PLATFORM_CLIENT_SECRET"], "PLATFORM_CLIENT_SECRET"
    if not client_id:
        return _error({"code": "missing_credentials", "message": "--client-id is required"}, EXIT_USAGE)
    try:
        platform_urls(url)
    except ValueError as exc:
        return _error({"code": "invalid_input", "message": str(exc)}, EXIT_USAGE)
    if not secret:
        if not sys.stdin.isatty():
            secret, source = sys.stdin.readline().strip(), "stdin"
        else:
            secret, source = getpass.getpass("client secret: "), "prompt"
    if not secret:  # an empty line, or stdin at its end
        return _error({"code": "missing_credentials", "message": "no client secret was given"}, EXIT_USAGE)
    try:
        with PlatformSession(url, client_id, secret) as session:
            who = session.call("GET", "/api/v1/auth/whoami/")
    except PlatformError as exc:
        return _error(
            {"status": exc.status, "code": exc.code, "message": exc.message, "details": exc.details}
        )
    except httpx.HTTPError as exc:
        return _error({"code": "unreachable", "message": f"{type(exc).__name__}: {exc}"})
    path = credentials.save(url, client_id, secret)
    answer = {"saved": str(path), "url": url, "whoami": who, "client_secret_from": source}
    json.dump(answer, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


# --- platform completion ------------------------------------------------------------------------


def _verbs(parser: argparse.ArgumentParser) -> list[str]:
    """The choices of a positional argument that names an action (``auth accounts list|get|...``,
    ``completion bash|zsh|fish``): verbs as a subcommand's are, for completion."""
    return [
        str(choice)
        for action in parser._actions
        if not action.option_strings
        and not isinstance(action, argparse._SubParsersAction)
        and action.choices is not None
        for choice in action.choices
    ]


def _tree(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, list[str]]:
    """Each command path ("", "config", "config get", "auth accounts list") -> the words that may
    follow it."""
    options: list[str] = []
    words: list[str] = []
    tree: dict[str, list[str]] = {}
    for action in parser._actions:
        options += [option for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                tree.update(_tree(sub, f"{prefix} {name}".strip()))
    verbs = _verbs(parser)
    for verb in verbs:  # after the verb: the same options
        tree[f"{prefix} {verb}".strip()] = sorted(set(options))
    tree[prefix] = sorted(set(options + words + verbs))
    return tree


def _values(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, list[str]]:
    """Each option that takes a value, as "command path --option" -> its choices (none: a free
    value, which completes to nothing rather than to the next verbs)."""
    values: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                values.update(_values(sub, f"{prefix} {name}".strip()))
        elif action.nargs != 0:
            choices = sorted(str(choice) for choice in action.choices or ())
            for option in action.option_strings:
                if option.startswith("--"):
                    for path in (prefix, *(f"{prefix} {verb}" for verb in _verbs(parser))):
                        values[f"{path} {option}".strip()] = choices
    return values


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion script: the commands, verbs and ``--options`` of every level, and the
    choices of an option's value."""
    cases = "\n".join(
        f'    "{path}") echo "{" ".join(words)}" ;;' for path, words in sorted(_tree(parser).items())
    )
    values = "\n".join(
        f'    "{path}") echo "{" ".join(words)}" ;;' for path, words in sorted(_values(parser).items())
    )
    return (
        '# bash completion for platform: eval "$(platform completion bash)"\n'
        '_platform_words() {\n  case "$1" in\n' + cases + "\n  esac\n}\n"
        '_platform_values() {\n  case "$1" in\n' + values + "\n    *) return 1 ;;\n  esac\n}\n"
        "_platform_complete() {\n"
        '  local path="" word values i skip=""\n'
        "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
        '    word="${COMP_WORDS[i]}"\n'
        '    if [[ -n "$skip" ]]; then skip=""; continue; fi\n'
        '    if [[ "$word" == -* ]]; then\n'
        '      _platform_values "${path:+$path }$word" >/dev/null && skip=1\n'
        "      continue\n"
        "    fi\n"
        '    if [[ " $(_platform_words "$path") " == *" $word "* ]]; then path="${path:+$path }$word"; fi\n'
        "  done\n"
        '  if [[ -n "$skip" ]]; then\n'
        '    values=$(_platform_values "${path:+$path }${COMP_WORDS[COMP_CWORD - 1]}")\n'
        '    COMPREPLY=($(compgen -W "$values" -- "${COMP_WORDS[COMP_CWORD]}"))\n'
        "    return\n"
        "  fi\n"
        '  COMPREPLY=($(compgen -W "$(_platform_words "$path")" -- "${COMP_WORDS[COMP_CWORD]}"))\n'
        "}\n"
        "complete -F _platform_complete platform\n"
    )


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    """A zsh completion function (the same words as bash's, level by level)."""
    cases = "\n".join(
        f'    "{path}") reply=({" ".join(words)}) ;;' for path, words in sorted(_tree(parser).items())
    )
    values = "\n".join(
        f'    "{path}") reply=({" ".join(words)}) ;;' for path, words in sorted(_values(parser).items())
    )
    return (
        "#compdef platform\n"
        '# zsh completion for platform: eval "$(platform completion zsh)" after compinit,\n'
        "# or save it as _platform in a directory of $fpath\n"
        '_platform_words() {\n  reply=()\n  case "$1" in\n' + cases + "\n  esac\n}\n"
        '_platform_values() {\n  reply=()\n  case "$1" in\n' + values + "\n    *) return 1 ;;\n  esac\n}\n"
        "_platform() {\n"
        '  local at="" word i skip=""\n'
        "  local -a reply\n"
        "  for ((i = 2; i < CURRENT; i++)); do\n"
        '    word="${words[i]}"\n'
        '    if [[ -n "$skip" ]]; then skip=""; continue; fi\n'
        '    if [[ "$word" == -* ]]; then _platform_values "${at:+$at }$word" && skip=1; continue; fi\n'
        '    _platform_words "$at"\n'
        '    if (( ${reply[(Ie)$word]} )); then at="${at:+$at }$word"; fi\n'
        "  done\n"
        '  if [[ -n "$skip" ]]; then\n'
        '    _platform_values "${at:+$at }${words[CURRENT - 1]}"\n'
        "  else\n"
        '    _platform_words "$at"\n'
        "  fi\n"
        '  compadd -- "${reply[@]}"\n'
        "}\n"
        "compdef _platform platform\n"
    )


def fish_completion(parser: argparse.ArgumentParser) -> str:
    """A fish completion script (the same words as bash's, level by level)."""
    cases = "\n".join(
        f"        case '{path}'\n            printf '%s\\n' {' '.join(words)}"
        for path, words in sorted(_tree(parser).items())
    )
    values = "\n".join(
        f"        case '{path}'\n            printf '%s\\n' {' '.join(words)}".rstrip()
        for path, words in sorted(_values(parser).items())
    )
    return (
        "# fish completion for platform: platform completion fish | source\n"
        "# (or save it as ~/.config/fish/completions/platform.fish)\n"
        'function __platform_words\n    switch "$argv[1]"\n' + cases + "\n    end\nend\n"
        'function __platform_values\n    switch "$argv[1]"\n' + values + "\n        case '*'\n"
        "            return 1\n    end\nend\n"
        "function __platform_complete\n"
        "    set -l tokens (commandline -opc)\n"
        '    set -l at ""\n'
        '    set -l skip ""\n'
        '    set -l option ""\n'
        "    for word in $tokens[2..-1]\n"
        '        if test -n "$skip"\n'
        '            set skip ""\n'
        "            continue\n"
        "        end\n"
        "        if string match -q -- '-*' $word\n"
        '            if __platform_values (string trim -- "$at $word") >/dev/null\n'
        "                set skip 1\n"
        '                set option (string trim -- "$at $word")\n'
        "            end\n"
        "            continue\n"
        "        end\n"
        '        if contains -- $word (__platform_words "$at")\n'
        '            set at (string trim -- "$at $word")\n'
        "        end\n"
        "    end\n"
        '    if test -n "$skip"\n'
        '        __platform_values "$option"\n'
        "    else\n"
        '        __platform_words "$at"\n'
        "    end\n"
        "end\n"
        "complete -c platform -f -a '(__platform_complete)'\n"
    )


SCRIPTS = {"bash": bash_completion, "zsh": zsh_completion, "fish": fish_completion}


def cmd_completion(options: argparse.Namespace) -> int:
    root = options.root_parser
    if root is None:  # the server's parser: the same service commands, and run/serve/manage
        try:
            from platformsite.cli import build_parser
        except ImportError:
            from platform_client.cli._main import build_parser
        root = build_parser()
    sys.stdout.write(SCRIPTS[options.shell](root))
    return 0


# --- platform demo ------------------------------------------------------------------------------


def demo_dir(given: str | None) -> Path:
    """``--examples``, else ``examples/demo`` here or in the checkout this package comes from."""
    candidates = [Path(given)] if given else [Path.cwd() / "examples" / "demo"]
    candidates.append(Path(__file__).resolve().parents[2] / "examples" / "demo")
    for candidate in candidates:
        if (candidate / "fleet.py").is_file():
            return candidate
    raise FileNotFoundError(
        "the demo fleet (examples/demo/fleet.py) is not here: run it from a checkout or --examples"
    )


def cmd_demo(options: argparse.Namespace) -> int:
    from platform_client.cli import EXIT_USAGE, _error

    try:
        folder = demo_dir(getattr(options, "examples", None))
        saved = credentials.load()
    except (OSError, ValueError) as exc:
        return _error({"code": "os_error", "message": str(exc)})
    env = dict(os.environ)
    for field, variable in (
        ("url", "PLATFORM_URL"),
        ("client_id", "PLATFORM_CLIENT_ID"),
        ("client_secret", "PLATFORM_CLIENT_SECRET"),
    ):
        value = getattr(options, field, None) or env.get(variable) or saved.get(field)
        if value:
            env[variable] = value
    if not env.get("PLATFORM_CLIENT_ID") or not env.get("PLATFORM_CLIENT_SECRET"):
        return _error(
            {"code": "missing_credentials", "message": "the demo needs a service account"}, EXIT_USAGE
        )
    args = [sys.executable, str(folder / "fleet.py"), "--interval", str(options.interval)]
    if options.requests is not None:
        args += ["--requests", str(options.requests)]
    if options.flaky:
        args += ["--flaky", options.flaky]
    if os.name == "posix":  # the fleet takes this process's place: Ctrl-C and SIGTERM reach it
        sys.stdout.flush()
        os.execve(sys.executable, args, env)  # noqa: S606 - the demo's own runner
    try:
        return subprocess.run(args, env=env, check=False).returncode  # noqa: S603 - the demo's own runner
    except KeyboardInterrupt:
        return 130


def add_commands(commands: argparse._SubParsersAction, root: argparse.ArgumentParser | None) -> None:
    login = commands.add_parser(
        "login", help="Check credentials and save them in ~/.config/platform/credentials (mode 0600)."
    )
    login.set_defaults(func=cmd_login)
    completion = commands.add_parser("completion", help="Print the completion script for bash, zsh or fish.")
    completion.add_argument("shell", choices=sorted(SCRIPTS))
    completion.set_defaults(func=cmd_completion, root_parser=root)
    demo = commands.add_parser(
        "demo", help="Start the demo fleet (examples/demo: a gateway and two backends) and load it."
    )
    demo.add_argument(
        "--requests", type=int, default=None, help="Stop after this many calls (default: Ctrl-C)."
    )
    demo.add_argument(
        "--flaky", choices=["on", "off"], default=None, help="Switch the drivers backend's failures."
    )
    demo.add_argument("--interval", type=float, default=0.1, help="Seconds between calls to the gateway.")
    demo.add_argument(
        "--examples", default=None, help="The folder holding fleet.py (default: examples/demo)."
    )
    demo.set_defaults(func=cmd_demo)
