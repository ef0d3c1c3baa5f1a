"""How labels and rules route a request: one implementation, for the router and the SDK.

- A **label** ``{service, version, key, value, weight, priority}`` puts ``key=value`` on
  ``weight`` percent of the version's nodes (at least one when the weight is above 0), chosen
  by a hash of the node id and the key, so the same nodes keep it.  Where labels of one key
  select the same node, the **higher priority** wins.
- A **rule** ``{service, version, key, value, weight, priority}`` sends ``weight`` percent of the
  requests labelled ``key=value`` to ``version``.  Of the rules a request matches, only those of
  the **highest priority** apply; the share their weights leave (100 minus their sum) is routed
  as a request without rules is: across every version, by node weight.  A rule whose version
  has no node to take it gives its share to that default.
- A request's labels then narrow the nodes, key by key: where some candidates carry the
  request's ``key=value`` (in discovery metadata or router labels), only those are used.

Pure functions, standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _rank(node_id: str, key: str) -> bytes:
    return hashlib.sha1(f"{node_id}\0{key}".encode(), usedforsecurity=False).digest()


def label_nodes(
    labels: Iterable[Mapping[str, Any]], versions: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, str]]:
    """``{node id: {key: value}}``: the router labels each node carries.

    ``labels`` are label definitions; ``versions`` maps a version to its node ids.
    """
    ordered = sorted(labels, key=lambda label: (-int(label["priority"]), label.get("id") or 0))
    applied: dict[str, dict[str, str]] = {}
    for label in ordered:
        nodes = sorted(versions.get(label["version"], ()), key=lambda node: _rank(node, label["key"]))
        weight = int(label["weight"])
        count = 0 if weight <= 0 else max(1, round(len(nodes) * weight / 100))
        for node in nodes[:count]:
            carried = applied.setdefault(node, {})
            carried.setdefault(label["key"], label["value"])  # a higher priority came first
    return applied


def matching_rules(rules: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """The rules a request labelled ``labels`` follows: those it matches of the highest priority."""
    matched = [rule for rule in rules if labels.get(rule["key"]) == rule["value"]]
    if not matched:
        return []
    top = max(int(rule["priority"]) for rule in matched)
    return [rule for rule in matched if int(rule["priority"]) == top]


def version_split(rules: Sequence[Mapping[str, Any]], available: set[str]) -> list[tuple[str | None, float]]:
    """``[(version, cumulative percent)]`` for the rules followed; ``None`` is the default route.

    A draw ``u`` in [0, 100) takes the first entry whose cumulative percent exceeds it.
    """
    split: list[tuple[str | None, float]] = []
    total = 0.0
    for rule in rules:
        weight = max(0, min(100, int(rule["weight"])))
        if weight and rule["version"] in available and total < 100:
            total = min(100.0, total + weight)
            split.append((rule["version"], total))
    if total < 100:
        split.append((None, 100.0))
    return split


def choose_version(split: Sequence[tuple[str | None, float]], draw: float) -> str | None:
    """The version a draw in [0, 100) lands on (None: the default route)."""
    for version, bound in split:
        if draw < bound:
            return version
    return None


def narrow(nodes: Sequence[Any], labels: Mapping[str, str], carried: Any) -> Sequence[Any]:
    """The nodes a request's labels prefer: key by key, those carrying ``key=value`` if any do.

    ``carried(node)`` is the mapping of labels a node carries.
    """
    for key, value in labels.items():
        matching = [node for node in nodes if carried(node).get(key) == value]
        if matching:
            nodes = matching
    return nodes
