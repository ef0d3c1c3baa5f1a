"""Policy patterns on hostile input.

Any text is a pattern (or resource) or ``PolicyError``; the compiled glob matches exactly what a
plain reference matcher does (``*`` any characters, ``/`` included; ``?`` one character but
``/``); a compiled policy decides as the rules say.  Through the API, any resource in a new rule or
a check answers 200/201 or a 400 in the error shape, never a 5xx.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from auth_app.policy import (
    CompiledPolicy,
    PolicyError,
    RuleSpec,
    decide,
    glob_to_regex,
    parse_pattern,
    parse_resource,
)

GLOB = st.text(alphabet="ab/*?.", max_size=12)
PATH = st.text(alphabet="ab/.", max_size=12)
RESOURCE_TEXT = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A(\*|[a-z]{1,8}):[A-Za-z0-9_.\-/*?@=+]{0,20}\Z"),
    st.builds(lambda service, path: f"{service}:{path}", st.sampled_from(["config", "events", "*"]), GLOB),
    st.sampled_from(["config:" + "a" * 281, "config:", ":", "config:a\n", "CONFIG:a", "config:a\x00"]),
)


def reference_match(glob: str, path: str) -> bool:
    """The glob's meaning, spelled out as a recursive matcher (slow, obviously right)."""

    @cache
    def at(g: int, p: int) -> bool:
        if g == len(glob):
            return p == len(path)
        if glob[g] == "*":
            return any(at(g + 1, q) for q in range(p, len(path) + 1))
        if p == len(path):
            return False
        if glob[g] == "?":
            return path[p] != "/" and at(g + 1, p + 1)
        return glob[g] == path[p] and at(g + 1, p + 1)

    return at(0, 0)


@settings(max_examples=3000, deadline=None)
@given(GLOB, PATH)
def test_glob_to_regex__matches_exactly_what_the_reference_matches(glob, path):
    expected = reference_match(glob, path)
    event(f"match {expected}")
    assert bool(glob_to_regex(glob).match(path)) == expected


@settings(max_examples=2000, deadline=None)
@given(RESOURCE_TEXT)
def test_parse_pattern_and_resource__any_text__parsed_or_policy_error(text):
    for parse in (parse_pattern, parse_resource):
        try:
            service, path = parse(text)
        except PolicyError:
            event(f"{parse.__name__} refused")
            continue
        event(f"{parse.__name__} parsed")
        assert f"{service}:{path}" == text


RULES = st.lists(
    st.builds(
        lambda number, glob, action, effect, priority: RuleSpec(
            number, "role", f"config:{glob}", action, effect, priority
        ),
        st.integers(1, 1000),
        GLOB.filter(bool),
        st.sampled_from(["read", "write", "*"]),
        st.sampled_from(["allow", "deny"]),
        st.integers(-2, 2),
    ),
    max_size=6,
)


@settings(max_examples=1500, deadline=None)
@given(RULES, st.text(alphabet="ab/.", min_size=1, max_size=12), st.sampled_from(["read", "write"]))
def test_decide__the_highest_matching_rule_decides_and_a_deny_wins_a_tie(rules, path, action):
    try:
        resource = parse_resource(f"config:{path}")[1]
    except PolicyError:
        return
    decision = decide(
        policy=CompiledPolicy(rules),
        scopes=frozenset({"config:read", "config:write"}),
        resource=f"config:{resource}",
        action=action,
        scope_suffices=True,
    )
    matching = [
        rule
        for rule in rules
        if rule.action in (action, "*") and reference_match(rule.resource.split(":", 1)[1], resource)
    ]
    if not rules:
        assert decision.allowed and decision.reason == "scope"
    elif not matching:
        assert not decision.allowed and decision.reason == "no_matching_rule"
    else:
        top = max(rule.priority for rule in matching)
        effects = {rule.effect for rule in matching if rule.priority == top}
        assert decision.allowed == (effects == {"allow"})


# --- Through the API -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_api__any_rule_resource_and_check__answers_or_400(api_client):
    admin = api_client("admin")
    checker = api_client("config:read", "config:write")
    assert admin.post("/api/v1/auth/roles/", {"name": "ops"}, format="json").status_code == 201

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(RESOURCE_TEXT, st.sampled_from(["read", "write", "*", "delete", ""]))
    def write_and_check(resource, action):
        rule = {"role": "ops", "resource": resource, "action": action}
        created = admin.post("/api/v1/auth/rules/", rule, format="json")
        event(f"rule {created.status_code}")
        assert created.status_code in (201, 400), (created.status_code, created.content)
        checked = checker.post("/api/v1/auth/check/", {"resource": resource, "action": action}, format="json")
        event(f"check {checked.status_code}")
        assert checked.status_code in (200, 400), (checked.status_code, checked.content)
        for response in (created, checked):
            if response.status_code == 400:
                assert set(response.json()["error"]) == {"code", "message", "details"}

    write_and_check()
