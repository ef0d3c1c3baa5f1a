"""Reads of the auth service: policy decisions (cached) and account lookups.

Every service authorizes resource access through :func:`is_allowed`, by way of
``auth_app.access``.  Compiled policies are kept per process, keyed by
the account and the policy version held in the shared cache; any change to roles, rules or
bindings bumps that version.  Each process re-reads the version at most every
``PLATFORM_REVOCATION_POLL_SECONDS`` (1 s), so a warm check costs no cache round trip and every
node applies a change within that interval (the node that made it, at once).
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache

from auth_app.models import Account, RoleBinding, Rule
from auth_app.policy import CompiledPolicy, Decision, RuleSpec, decide, parse_resource
from auth_app.tokens import TokenInfo
from platformsite import localstate
from platformsite.cache import CACHE_DOWN

POLICY_VERSION_KEY = "auth:policy-version"
MAX_COMPILED = 10_000

_compiled: dict[tuple[int | None, str], CompiledPolicy] = {}
_compiled_lock = threading.Lock()
_compiling = threading.Lock()
_EMPTY = CompiledPolicy([])


class _VersionPoll:
    """The policy version, re-read from the shared cache at most every poll interval."""

    value: str | None = None
    next_poll: float = 0.0


_version = _VersionPoll()


def policy_version() -> str:
    now = time.monotonic()
    if _version.value is None or now >= _version.next_poll:
        try:
            _version.value = cache.get_or_set(POLICY_VERSION_KEY, lambda: uuid.uuid4().hex, timeout=None)
        except CACHE_DOWN:
            # The shared cache is down (Redis restarting): no change elsewhere can be heard, so
            # the policies are compiled again from the database at each poll until it is back.
            _version.value = uuid.uuid4().hex
        _version.next_poll = now + settings.PLATFORM_REVOCATION_POLL_SECONDS
    return _version.value


def bump_policy_version() -> None:
    """Every node uses the changed rules from its next poll (this one at once)."""
    value = uuid.uuid4().hex
    cache.set(POLICY_VERSION_KEY, value, timeout=None)
    _version.value = value
    _version.next_poll = time.monotonic() + settings.PLATFORM_REVOCATION_POLL_SECONDS


def _forget_policies() -> None:
    _compiled.clear()
    _version.value = None


_stats = localstate.register_cache("auth.policies", size=lambda: len(_compiled), reset=_forget_policies)


def account_rules(account_id: int) -> list[RuleSpec]:
    rows = Rule.objects.filter(role__bindings__account_id=account_id).values_list(
        "id", "role__name", "resource", "action", "effect", "priority"
    )
    return [RuleSpec(*row) for row in rows]


def policy_for(account_id: int | None, *, may_compile: bool = True) -> CompiledPolicy | None:
    """The account's compiled rules; with ``may_compile=False``, None unless this process has them."""
    if account_id is None:
        return _EMPTY
    key = (account_id, policy_version())
    compiled = _compiled.get(key)
    if compiled is not None:
        _stats.hits += 1
    else:
        _stats.misses += 1
    if compiled is None and may_compile:
        # One compile at a time: threads missing the same policy (all of a worker's at a new policy
        # version) wait for the first one's instead of each building 10,000 regexes at once.
        with _compiling:
            compiled = _compiled.get(key)
            if compiled is None:
                compiled = CompiledPolicy(account_rules(account_id))
                with _compiled_lock:
                    if len(_compiled) >= MAX_COMPILED:
                        _compiled.clear()
                    _compiled[key] = compiled
    return compiled


def is_allowed(*, account_id: int | None, scopes: frozenset[str], resource: str, action: str) -> Decision:
    """May the holder of ``scopes`` (and of ``account_id``'s roles) do ``action`` on ``resource``?

    Raises ``auth_app.policy.PolicyError`` for a resource or action that does not parse.
    """
    return decide(
        policy=policy_for(account_id),
        scopes=scopes,
        resource=resource,
        action=action,
        scope_suffices=settings.PLATFORM_POLICY_SCOPE_SUFFICES,
    )


def warm_decision(token: TokenInfo, *, resource: str, action: str) -> Decision | None:
    """:func:`is_allowed` for a token's holder, or None if deciding needs a database query."""
    policy = policy_for(token.account_id, may_compile=False)
    if policy is None:
        return None
    return decide(
        policy=policy,
        scopes=token.scopes,
        resource=resource,
        action=action,
        scope_suffices=settings.PLATFORM_POLICY_SCOPE_SUFFICES,
    )


def account_by_subject(subject: str) -> Account | None:
    """``service:<name>``, ``user:<username>`` or a bare account name."""
    kind, _, name = subject.partition(":")
    if not name:
        return Account.objects.filter(name=subject).first()
    if kind == "user":
        return Account.objects.filter(type=Account.Type.USER, user__username=name).first()
    if kind == "service":
        return Account.objects.filter(type=Account.Type.SERVICE, name=name).first()
    return None


def subject_decision(subject: str, *, resource: str, action: str) -> Decision:
    """:func:`is_allowed` for the account ``subject`` names, its scopes standing in for a token's.

    A subject with no account, or a deactivated one, is denied and says so (``unknown_subject``,
    ``inactive_subject``): a typo in an operator's check must not read as a policy denial.  A
    resource that does not parse raises ``PolicyError`` whoever the subject is.
    """
    account = account_by_subject(subject)
    if account is None or not account.is_active:
        parse_resource(resource)
        return Decision(False, "unknown_subject" if account is None else "inactive_subject")
    return is_allowed(
        account_id=account.pk, scopes=frozenset(account.scope_list), resource=resource, action=action
    )


def account_role_names(account_id: int | None) -> frozenset[str]:
    """The names of the roles bound to an account (none for a session without one)."""
    if account_id is None:
        return frozenset()
    return frozenset(RoleBinding.objects.filter(account_id=account_id).values_list("role__name", flat=True))
