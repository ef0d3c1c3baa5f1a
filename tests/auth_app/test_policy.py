"""The policy engine on its own: matching, priority, deny-wins, scope gate, indexing."""

from __future__ import annotations

import pytest

from auth_app.policy import CompiledPolicy, PolicyError, RuleSpec, decide, parse_pattern

READ = frozenset({"config:read"})


def rule(resource, action="read", effect="allow", priority=0, rule_id=1):
    return RuleSpec(rule_id, "role", resource, action, effect, priority)


def check(rules, resource, action="read", scopes=READ, scope_suffices=True):
    return decide(
        policy=CompiledPolicy(rules),
        scopes=scopes,
        resource=resource,
        action=action,
        scope_suffices=scope_suffices,
    )


def test_rule_for_one_namespace__narrows_the_scope_to_it():
    rules = [rule("config:payments/*")]
    assert check(rules, "config:payments/production").allowed
    assert not check(rules, "config:orders/production").allowed
    assert check(rules, "config:orders/production").reason == "no_matching_rule"


def test_no_rule_for_the_service__scope_suffices_when_configured():
    assert check([rule("db:orders/*")], "config:anything").reason == "scope"
    assert check([rule("db:orders/*")], "config:anything").allowed
    assert not check([], "config:anything", scope_suffices=False).allowed


def test_missing_scope__denied_whatever_the_rules():
    decision = check([rule("config:*")], "config:payments", scopes=frozenset({"db:read"}))
    assert (decision.allowed, decision.reason) == (False, "missing_scope")


def test_admin_scope__allowed_without_rules():
    decision = check([rule("config:x", effect="deny")], "config:x", scopes=frozenset({"admin"}))
    assert (decision.allowed, decision.reason) == (True, "admin")


def test_deny__wins_over_allow_at_equal_priority():
    rules = [rule("config:payments/*", rule_id=1), rule("config:payments/secret*", effect="deny", rule_id=2)]
    decision = check(rules, "config:payments/secrets")
    assert not decision.allowed
    assert decision.rule.id == 2


def test_higher_priority_allow__beats_lower_priority_deny():
    rules = [rule("config:*", effect="deny", rule_id=1), rule("config:payments/*", priority=10, rule_id=2)]
    assert check(rules, "config:payments/a").allowed
    assert not check(rules, "config:orders/a").allowed


def test_action__must_match_or_be_any():
    rules = [rule("config:payments/*", action="write")]
    scopes = frozenset({"config:read", "config:write"})
    assert not check(rules, "config:payments/a", "read", scopes=scopes).allowed
    assert check(rules, "config:payments/a", "write", scopes=scopes).allowed
    assert check([rule("config:payments/*", action="*")], "config:payments/a", "read").allowed


def test_wildcard_service__applies_to_every_service():
    rules = [rule("*:team-a/*")]
    assert check(rules, "config:team-a/x").allowed
    assert not check(rules, "config:team-b/x").allowed


def test_question_mark__matches_one_character_but_not_a_slash():
    rules = [rule("config:app?")]
    assert check(rules, "config:app1").allowed
    assert not check(rules, "config:app12").allowed
    assert not check([rule("config:a?b")], "config:a/b").allowed


@pytest.mark.parametrize(
    "pattern",
    [
        "config",
        "config:",
        "nosuch:x",
        "config:[abc]",
        "CONFIG:x",
        "config:a b",
        "config:a\n",
        "config:" + "x" * 300,
    ],
)
def test_pattern_that_does_not_parse__is_refused(pattern):
    with pytest.raises(PolicyError):
        parse_pattern(pattern)


@pytest.mark.parametrize("resource", ["config", "config:*", "config:a b", "x:", "config:a\n"])
def test_checked_resource_that_does_not_parse__is_refused(resource):
    with pytest.raises(PolicyError):
        check([], resource)


def test_ten_thousand_rules__decide_from_the_right_bucket():
    # given one allow rule per namespace, and a deny on one of them
    rules = [rule(f"config:ns{i}/*", rule_id=i) for i in range(10_000)]
    rules.append(rule("config:ns42/secret", effect="deny", priority=5, rule_id=99_999))
    policy = CompiledPolicy(rules)
    # then lookups find their own rule
    assert (
        decide(
            policy=policy, scopes=READ, resource="config:ns9999/a", action="read", scope_suffices=True
        ).rule.id
        == 9999
    )
    assert not decide(
        policy=policy, scopes=READ, resource="config:ns42/secret", action="read", scope_suffices=True
    ).allowed
    assert not decide(
        policy=policy, scopes=READ, resource="config:other/a", action="read", scope_suffices=True
    ).allowed
