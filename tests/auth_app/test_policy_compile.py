"""Compiling an account's policy in a worker: once, however many threads miss it at the same time."""

from __future__ import annotations

import threading

from auth_app import selectors
from auth_app.policy import RuleSpec

THREADS = 8


def test_threads_missing_the_same_policy__compile_it_once(monkeypatch):
    monkeypatch.setattr(selectors, "_compiled", {})
    entered, everyone_in = [], threading.Event()

    def slow_rules(account_id):
        # Without the compile lock every thread gets here and the last one lets them all go on;
        # with it the first waits alone (0.5 s at most) while the others wait for its result.
        entered.append(account_id)
        if len(entered) == THREADS:
            everyone_in.set()
        everyone_in.wait(0.5)
        return [RuleSpec(i, "role", f"config:ns{i}/*", "read", "allow", 0) for i in range(100)]

    monkeypatch.setattr(selectors, "account_rules", slow_rules)
    start = threading.Barrier(THREADS)
    results = []

    def check():
        start.wait()
        results.append(selectors.policy_for(42))

    threads = [threading.Thread(target=check) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(entered) == 1
    assert len(results) == THREADS
    assert all(policy is results[0] for policy in results)
    assert results[0].size == 100
