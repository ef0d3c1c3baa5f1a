"""The project's files explain themselves: every document they point to is in the project."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: A Markdown file named in text: ``docs/config.md``, ``README.md``, ``[x](architecture.md)``.
MARKDOWN_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[A-Za-z][\w.-]*\.md)\b")


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in out.split("\0") if name]


THIS_FILE = str(Path(__file__).resolve().relative_to(ROOT))


def test_every_markdown_document_a_tracked_file_names__is_in_the_project():
    files = _tracked_files()
    documents = {Path(name).name for name in files if name.endswith(".md")}
    documents |= {name for name in files if name.endswith(".md")}
    offenders = []
    for name in files:
        path = ROOT / name
        if (
            name == THIS_FILE
            or not path.is_file()
            or not name.endswith((".py", ".md", ".html", ".toml", ".txt", "Makefile", "run"))
        ):
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), 1):
            for found in MARKDOWN_NAME.findall(line):
                if found not in documents and Path(found).name not in documents:
                    offenders.append(f"{name}:{number}: {found}")
    assert not offenders, "pointers to documents the project does not contain:\n" + "\n".join(offenders)


def test_the_check__finds_a_pointer_to_a_missing_document():
    assert MARKDOWN_NAME.findall("see docs/nowhere.md and README.md") == ["docs/nowhere.md", "README.md"]
