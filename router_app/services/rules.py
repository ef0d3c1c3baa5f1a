"""Operator writes: labels, rules (A/B), rate limits and a service's policy.

Each write holds the service's policy row for update, so two writers to one service are taken one
after the other and the conflict checks see each other's rows.

Conflicts are refused with 409 naming the rows in the way:

- a label with the same (service, version, key, priority) as another but a different value
  (which value a node gets would depend on the order they were made);
- a rule with the same (service, priority) as another on a different key (a request carrying
  both labels could follow either);
- rules of one (service, key, value, priority) whose weights add up to more than 100.

Higher priority wins, for labels (which value a node gets) and rules (which rules a request follows).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum

from platformsite.api.errors import Conflict, NotFound
from router_app.models import Label, Policy, RateLimit, Rule
from router_app.outlier import Params
from router_app.services.common import policy_for, routes_changed

PRIORITY_LIMIT = 1_000_000


def _lock(service: str) -> Policy:
    policy = policy_for(service)
    return Policy.objects.select_for_update().get(pk=policy.pk)


def _describe(row: Label | Rule) -> dict[str, Any]:
    return {
        "id": row.pk,
        "version": row.version,
        "key": row.key,
        "value": row.value,
        "weight": row.weight,
        "priority": row.priority,
    }


def _exists(row: Label | Rule, what: str) -> Conflict:
    """The 409 for a row whose unique key is taken: a label's (service, version, key, value), a
    rule's with its priority; the answer names that row as every <thing>_exists does."""
    key = ("service", "version", "key", "value", *(("priority",) if isinstance(row, Rule) else ()))
    values = {name: getattr(row, name) for name in key}
    existing = type(row).objects.filter(**values).exclude(pk=row.pk).values_list("pk", flat=True).first()
    return Conflict(
        f"This {what} exists already (#{existing}).",
        code=f"{what}_exists",
        details={"id": existing, **values},
    )


def _save(row: Label | Rule, what: str) -> None:
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError as exc:
        raise _exists(row, what) from exc


@transaction.atomic
def label_save(*, label: Label | None = None, **values: Any) -> Label:
    """Create a label, or change ``label``, with ``values`` (already checked for shape)."""
    label = label or Label()
    old_service = label.service if label.pk else None
    for name, value in values.items():
        setattr(label, name, value)
    _lock(label.service)
    clashing = (
        Label.objects.filter(
            service=label.service, version=label.version, key=label.key, priority=label.priority
        )
        .exclude(value=label.value)
        .exclude(pk=label.pk)
        .first()
    )
    if clashing is not None:
        raise Conflict(
            f"Label #{clashing.pk} puts {clashing.key}={clashing.value} on version {clashing.version} at the "
            f"same priority {clashing.priority}: give one of them another priority.",
            code="label_conflict",
            details={"conflicts_with": [_describe(clashing)]},
        )
    _save(label, "label")
    routes_changed(label.service, "labels")
    if old_service and old_service != label.service:
        routes_changed(old_service, "labels")
    return label


@transaction.atomic
def label_delete(*, label: Label) -> None:
    _lock(label.service)
    label.delete()
    routes_changed(label.service, "labels")


@transaction.atomic
def rule_save(*, rule: Rule | None = None, **values: Any) -> Rule:
    """Create a rule, or change ``rule``, with ``values`` (already checked for shape)."""
    rule = rule or Rule()
    old_service = rule.service if rule.pk else None
    for name, value in values.items():
        setattr(rule, name, value)
    _lock(rule.service)
    others = Rule.objects.filter(service=rule.service, priority=rule.priority).exclude(pk=rule.pk)
    other_key = others.exclude(key=rule.key).first()
    if other_key is not None:
        raise Conflict(
            f"Rule #{other_key.pk} on label {other_key.key!r} has the same priority {rule.priority}: "
            f"a request carrying both labels could follow either. Give them different priorities.",
            code="rule_conflict",
            details={"conflicts_with": [_describe(other_key)]},
        )
    same = others.filter(key=rule.key, value=rule.value)
    if same.filter(version=rule.version).exists():  # the same rule again: not a share to add up
        raise _exists(rule, "rule")
    total = (same.aggregate(total=Sum("weight"))["total"] or 0) + rule.weight
    if total > 100:
        raise Conflict(
            f"Rules for {rule.key}={rule.value} at priority {rule.priority} would send {total}% of the "
            f"requests: at most 100.",
            code="rule_conflict",
            details={"conflicts_with": [_describe(r) for r in same[:20]], "total_weight": total},
        )
    _save(rule, "rule")
    routes_changed(rule.service, "rules")
    if old_service and old_service != rule.service:
        routes_changed(old_service, "rules")
    return rule


@transaction.atomic
def rule_delete(*, rule: Rule) -> None:
    _lock(rule.service)
    rule.delete()
    routes_changed(rule.service, "rules")


@transaction.atomic
def rate_limit_set(*, service: str, caller: str, rate: float, burst: int) -> tuple[RateLimit, bool]:
    _lock(service)
    limit, created = RateLimit.objects.update_or_create(
        service=service, caller=caller, defaults={"rate": rate, "burst": burst}
    )
    routes_changed(service, "rate_limits")
    return limit, created


@transaction.atomic
def rate_limit_delete(*, limit: RateLimit) -> None:
    _lock(limit.service)
    limit.delete()
    routes_changed(limit.service, "rate_limits")


@transaction.atomic
def policy_update(*, service: str, values: dict[str, Any]) -> Policy:
    """Change a service's enforce switch or outlier-detection parameters (the others unchanged)."""
    policy = _lock(service)
    for name, value in values.items():
        if name == "enforce" or name in Params.names():
            setattr(policy, name, value)
    policy.save()
    routes_changed(service, "policy")
    policy.refresh_from_db()
    return policy


def get_or_404(model: type[Label] | type[Rule] | type[RateLimit], pk: Any) -> Any:
    try:
        number = int(pk)
        if not 0 < number < 2**31:
            raise ValueError(pk)
        return model.objects.get(pk=number)
    except (ValueError, TypeError, model.DoesNotExist):
        shown = str(pk) if len(str(pk)) <= 20 else f"{str(pk)[:20]}…"  # cut, and saying so
        raise NotFound(f"No {model.__name__.lower()} #{shown}.") from None
