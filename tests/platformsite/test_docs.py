"""The project's files explain themselves: none points to a document that is not in the project."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Notes kept outside the repository; what they say belongs in the code, README or docs/.
OUTSIDE_DOCUMENTS = ("DESIGN.md", "CALIBRATION.md", "CONVENTIONS.md")


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [name for name in out.split("\0") if name and not name.startswith("tests/")]


def test_no_tracked_file_outside_tests__names_a_document_missing_from_the_project():
    offenders = []
    for name in _tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet committed
        text = path.read_bytes().decode("utf-8", errors="ignore")
        offenders += [
            f"{name}:{number}: {document}"
            for number, line in enumerate(text.splitlines(), 1)
            for document in OUTSIDE_DOCUMENTS
            if document in line
        ]
    assert not offenders, "pointers to documents outside the project:\n" + "\n".join(offenders)
