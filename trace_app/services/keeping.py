"""Keep rules, applied at ingest (tail rules per service, trace_app.models.KeepRule).

A trace's spans from one service, in one ingest request, are kept when any of them has an error
(``keep_errors``) or is slower than ``slower_than_ms``, or when the trace was already kept (some
of its spans are stored), or when the trace id falls in the kept share: the share is decided by the
trace id alone, so every service keeps the same traces.  Without rules (the default) every span
is kept.  Rules are read at most every RULES_TTL seconds per process.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.db import transaction

from platformsite import localstate
from platformsite.api.errors import Conflict, NotFound
from trace_app.models import KeepRule
from trace_app.store import get_store

RULES_TTL = 10.0
DEFAULT_RULE = KeepRule(service="*")
_rules: dict[str, Any] = {}
_stats = localstate.register_cache(
    "trace.keep_rules", size=lambda: len(_rules.get("rules", ())), reset=_rules.clear
)


def rules() -> dict[str, KeepRule]:
    """Every keep rule by service, from this process's copy (refreshed every RULES_TTL seconds)."""
    now = time.monotonic()
    if _rules and now - _rules["at"] < RULES_TTL:
        _stats.hits += 1
        return _rules["rules"]
    _stats.misses += 1
    loaded = {rule.service: rule for rule in KeepRule.objects.all()}
    _rules.update(at=now, rules=loaded)
    return loaded


def forget_rules() -> None:
    """Read the rules again on next use (after this process changed them)."""
    _rules.clear()


@transaction.atomic
def keep_rule_create(*, service: str, **fields: Any) -> KeepRule:
    """A new keep rule; 409 ``rule_exists`` if ``service`` has one (a PUT replaces it)."""
    if KeepRule.objects.filter(service=service).exists():
        raise Conflict(
            f"A keep rule for {service!r} exists: PUT /api/v1/trace/rules/{service}/ replaces it.",
            code="rule_exists",
            details={"service": service},
        )
    return keep_rule_set(service=service, **fields)


@transaction.atomic
def keep_rule_set(*, service: str, **fields: Any) -> KeepRule:
    """Create or replace ``service``'s keep rule (this process reads the rules again at once;
    others within RULES_TTL seconds)."""
    rule, _ = KeepRule.objects.update_or_create(service=service, defaults=fields)
    transaction.on_commit(forget_rules)
    return rule


def keep_rules_readable(may_read: Callable[[str], bool]):
    """The keep rules of the services ``may_read`` lets the caller read, as a queryset (a rule is
    read as its service is: a list must not name what the rule's own page refuses)."""
    names = KeepRule.objects.values_list("service", flat=True)
    return KeepRule.objects.filter(service__in=[name for name in names if may_read(name)])


def keep_rule(service: str) -> KeepRule:
    """``service``'s keep rule, or 404 ``rule_not_found``."""
    rule = KeepRule.objects.filter(service=service).first()
    if rule is None:
        raise _no_rule(service)
    return rule


def _no_rule(service: str) -> NotFound:
    return NotFound(f"No keep rule for {service!r}.", "rule_not_found", {"service": service})


@transaction.atomic
def keep_rule_delete(*, service: str) -> None:
    deleted, _ = KeepRule.objects.filter(service=service).delete()
    if not deleted:
        raise _no_rule(service)
    transaction.on_commit(forget_rules)


def in_share(trace_id: str, share: float) -> bool:
    """Whether a trace id falls in the kept share (its lowest 32 bits, which are random)."""
    return share >= 1.0 or int(trace_id[-8:], 16) < share * 0x1_0000_0000


def keep(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans to store (see the module's docstring)."""
    known = rules()
    if not known:
        return spans
    default = known.get("*", DEFAULT_RULE)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for span in spans:
        groups[(span["trace_id"], span["service"])].append(span)
    kept: list[dict[str, Any]] = []
    undecided: list[list[dict[str, Any]]] = []
    for (trace, service), group in groups.items():
        rule = known.get(service, default)
        slow = rule.slower_than_ms * 1000 if rule.slower_than_ms is not None else None
        if (
            in_share(trace, rule.keep_share)
            or (rule.keep_errors and any(span["error"] for span in group))
            or (slow is not None and any(span["duration"] > slow for span in group))
        ):
            kept.extend(group)
        else:
            undecided.append(group)
    if undecided:
        already = get_store().known_traces(group[0]["trace_id"] for group in undecided)
        kept_traces = {span["trace_id"] for span in kept} | already
        for group in undecided:
            if group[0]["trace_id"] in kept_traces:
                kept.extend(group)
    return kept
