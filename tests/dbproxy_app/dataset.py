"""A small table of records with awkward values, stored through the API on any backend."""

from __future__ import annotations

from typing import Any

ENVS = ["prod", "dev", "staging", "50%_off", "a_b", "x*y", "back\\slash", "Prod", "it's", 'q"uote']
NAMES = ["alpha", "Alpha", "beta", "gamma%", "d_lta", "ep[s]ilon", "ze?ta", "", "ALPHA beta", "line\nbreak"]


def records() -> list[dict[str, Any]]:
    out = []
    for i in range(40):
        metadata = {"env": ENVS[i % len(ENVS)]}
        if i % 3:
            metadata["region"] = ["eu", "us", "ap"][i % 3]
        if i % 7 == 0:
            metadata["owner"] = f"service:team{i % 2}"
        data: Any = {
            "total": [0, 5, 10, 25, -3, 100, 2.5][i % 7],
            "name": NAMES[i % len(NAMES)],
            "flag": [True, False, None][i % 3],
            "nested": {"k": ["v1", "v2"][i % 2], "n": i},
        }
        if i % 5 == 0:
            data["total"] = str(data["total"])  # a number written as text: ->> matches it, -> does not
        if i % 11 == 0:
            data = None
        out.append({"id": f"r{i:02d}", "metadata": metadata, "data": data})
    return out
