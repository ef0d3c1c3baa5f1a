"""The fault matrix: one row per fault, written as JSON and as a Markdown table."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.faults.load import Tally
from tests.servers import ROOT


def _errors(counts: dict[str, int]) -> str:
    return ", ".join(f"{label}: {count}" for label, count in counts.items()) or "none"


def _share(counts: dict[str, int], what: str) -> str:
    return f"{counts.get(what + '_answered', 0)} of {counts[what]}" if counts.get(what) else "-"


class Matrix:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rows: list[dict[str, Any]] = []

    def add(self, tally: Tally, lost: dict[str, list], **notes: Any) -> dict[str, Any]:
        row = {
            **tally.row(),
            "accepted_writes_lost": sum(len(keys) for keys in lost.values()),
            "lost": {kind: keys[:20] for kind, keys in lost.items()},
            **notes,
        }
        self.rows.append(row)
        print(f"\n{json.dumps(row)}")
        return row

    def markdown(self) -> str:
        lines = [
            "| fault | load held (accepted writes/s) | while down: writes / reads answered | write errors "
            "by status | read errors by status | error answer (median / slowest) | accepted writes lost |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row['phase']} | {row['writes_per_s']} ({row['writes_accepted']} in {row['seconds']} s) "
                f"| {_share(row['while_down'], 'writes')} / {_share(row['while_down'], 'reads')} "
                f"| {_errors(row['write_errors'])} | {_errors(row['read_errors'])} "
                f"| {row['median_error_s']} / {row['slowest_error_s']} s | {row['accepted_writes_lost']} |"
            )
        notes = [f"- {row['phase']}: {row['note']}" for row in self.rows if row.get("note")]
        return "\n".join(lines + (["", *notes] if notes else []))

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit.stdout.strip(),
            "rows": self.rows,
        }
        (self.directory / "matrix.json").write_text(json.dumps(record, indent=2) + "\n")
        (self.directory / "matrix.txt").write_text(self.markdown() + "\n")
