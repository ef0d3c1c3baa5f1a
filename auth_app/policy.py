"""The policy engine: rules narrow what an account's scopes allow to matching resources.

A resource is ``<service>:<path>`` (``config:payments/production``, ``db:orders/items``).  A
rule's resource is a glob over that: ``*`` matches any characters (``/`` included), ``?`` one
character other than ``/``.  Deciding a request:

1. The credentials must hold ``<service>:read`` or ``<service>:write`` for the action (``admin``
   holds everything and skips the rules).
2. If the account's roles carry rules for that service (or for ``*``), those rules decide: the
   matching rule of highest priority wins, a deny beats an allow at equal priority, and no
   matching rule means deny.
3. If they carry none, the scope alone decides when ``PLATFORM_POLICY_SCOPE_SUFFICES`` is on
   (the default); otherwise the request is denied.

Rules are compiled once per account and policy version and indexed by service and by the first
literal path segment, so a check with 10,000 rules looks at a handful of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from platformsite.services import service_names

RESOURCE_PATTERN = re.compile(r"^(?P<service>\*|[a-z]+):(?P<path>[A-Za-z0-9_.\-/*?@=+]{1,280})\Z")
RESOURCE = re.compile(r"^(?P<service>[a-z]+):(?P<path>[A-Za-z0-9_.\-/@=+]{1,280})\Z")
ACTIONS = ("read", "write")
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/@=+]")


class PolicyError(ValueError):
    """A rule pattern or resource that does not parse."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: int
    role: str
    resource: str
    action: str
    effect: str
    priority: int

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "role": self.role,
            "resource": self.resource,
            "action": self.action,
            "effect": self.effect,
            "priority": self.priority,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    rule: RuleSpec | None = None

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "rule": self.rule.as_dict() if self.rule else None,
        }


def parse_pattern(resource: str) -> tuple[str, str]:
    """Split and validate a rule's resource pattern; raises PolicyError."""
    match = RESOURCE_PATTERN.match(resource)
    if not match:
        raise PolicyError(
            f"{resource!r} is not '<service>:<pattern>' (letters, digits, '_.-/@=+', '*' and '?')"
        )
    service = match["service"]
    if service != "*" and service not in service_names():
        raise PolicyError(f"Unknown service {service!r} in {resource!r}")
    return service, match["path"]


def resource_for(service: str, name: str) -> str:
    """The resource of a name that comes from outside (an event type, a span's service name).

    Such names may hold any character: each one a resource path cannot hold becomes ``_``
    (``checkout service`` -> ``trace:checkout_service``), so every name has a resource a rule
    can match, and a name a resource can hold is its own path.
    """
    return f"{service}:{_PATH_UNSAFE.sub('_', name[:280]) or '_'}"


def every_resource(service: str) -> str:
    """The resource of a read across every name of ``service`` (every service's traces, a watch of
    ``*``): a name no resource is given, so only a rule allowing any name (``trace:*``) allows it,
    and a rule narrowing an account to some names refuses it."""
    return f"{service}:-every-service-"


def parse_resource(resource: str) -> tuple[str, str]:
    """Split and validate a concrete resource (no wildcards); raises PolicyError."""
    match = RESOURCE.match(resource)
    if not match:
        raise PolicyError(f"{resource!r} is not '<service>:<path>'")
    return match["service"], match["path"]


def _glob_piece(text: str) -> str:
    return "".join("[^/]" if char == "?" else re.escape(char) for char in text)


def glob_to_regex(path: str) -> re.Pattern[str]:
    """A regex for the glob that cannot backtrack catastrophically (``*a*a*a...b`` stays linear).

    As ``fnmatch`` does, each fixed-length piece between two ``*`` is matched atomically at its
    first occurrence: a later occurrence can never match where the first one does not.
    """
    head, *middle = path.split("*")
    if not middle:
        return re.compile(_glob_piece(head) + r"\Z", re.DOTALL)
    *middle, tail = middle
    parts = [_glob_piece(head)]
    parts.extend(f"(?>.*?{_glob_piece(piece)})" for piece in middle if piece)
    parts.append(".*" + _glob_piece(tail))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


@dataclass
class _ServiceRules:
    by_segment: dict[str, list[tuple[re.Pattern[str], RuleSpec]]] = field(default_factory=dict)
    wild: list[tuple[re.Pattern[str], RuleSpec]] = field(default_factory=list)


class CompiledPolicy:
    """The rules of one account, indexed for fast matching."""

    def __init__(self, rules: list[RuleSpec]) -> None:
        self.services: dict[str, _ServiceRules] = {}
        for rule in rules:
            service, path = parse_pattern(rule.resource)
            bucket = self.services.setdefault(service, _ServiceRules())
            entry = (glob_to_regex(path), rule)
            head = path.split("/", 1)[0]
            if "*" in head or "?" in head:
                bucket.wild.append(entry)
            else:
                bucket.by_segment.setdefault(head, []).append(entry)
        self.size = len(rules)

    def governs(self, service: str) -> bool:
        return service in self.services or "*" in self.services

    def match(self, service: str, path: str, action: str) -> RuleSpec | None:
        """The deciding rule among those matching, or None."""
        head = path.split("/", 1)[0]
        best: RuleSpec | None = None
        for name in (service, "*"):
            bucket = self.services.get(name)
            if bucket is None:
                continue
            for candidates in (bucket.by_segment.get(head, ()), bucket.wild):
                for regex, rule in candidates:
                    if rule.action != "*" and rule.action != action:
                        continue
                    if best is not None and (rule.priority, rule.effect == "deny") <= (
                        best.priority,
                        best.effect == "deny",
                    ):
                        continue
                    if regex.match(path):
                        best = rule
        return best


def decide(
    *, policy: CompiledPolicy, scopes: frozenset[str], resource: str, action: str, scope_suffices: bool
) -> Decision:
    """Decide one request; see the module docstring for the order of the steps."""
    if action not in ACTIONS:
        raise PolicyError(f"action must be one of {', '.join(ACTIONS)}")
    service, path = parse_resource(resource)
    if "admin" in scopes:
        return Decision(True, "admin")
    if f"{service}:{action}" not in scopes:
        return Decision(False, "missing_scope")
    if policy.governs(service):
        rule = policy.match(service, path, action)
        if rule is None:
            return Decision(False, "no_matching_rule")
        return Decision(rule.effect == "allow", "rule", rule)
    return Decision(scope_suffices, "scope" if scope_suffices else "no_matching_rule")
