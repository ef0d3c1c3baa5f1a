"""In-process micro-benchmarks: the SDK's local work and the server's policy evaluation.

These measure code that runs without HTTP (a service verifying a JWT offline, the policy
engine deciding with 10,000 rules), so they are timed in this process on one core, against a
baseline measured in the same run where one makes sense.  Each returns a dict of figures.
"""

from __future__ import annotations

import base64
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _timed(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            fn()
        count += 200
    return count, time.perf_counter() - started


def jwt_verify(seconds: float) -> dict[str, object]:
    """platform_client.auth.JWKSVerifier.verify on a platform-shaped RS256 access token."""
    from platform_client.auth import JWKSVerifier

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header = _b64(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}).encode())
    now = int(time.time())
    claims = {
        "iss": "http://127.0.0.1/o",
        "sub": "svc",
        "aud": "micro-platform",
        "client_id": "svc",
        "iat": now,
        "exp": now + 3600,
        "jti": "x",
        "scope": "config:read monitor:read",
    }
    payload = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{header}.{payload}.{_b64(signature)}"
    verifier = JWKSVerifier("http://127.0.0.1:1/unused")
    verifier._keys = {"k1": key.public_key()}
    verifier._fetched_at = time.monotonic()
    assert verifier.verify(token, scopes=["config:read"])["sub"] == "svc"
    public = key.public_key()
    raw = _b64(signature)

    def bare_rsa() -> None:  # the signature check alone: the floor of any verifier
        public.verify(
            base64.urlsafe_b64decode(raw + "=="),
            f"{header}.{payload}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    count, elapsed = _timed(lambda: verifier.verify(token, scopes=["config:read"]), seconds)
    floor_count, floor_elapsed = _timed(bare_rsa, seconds / 2)
    rate, floor = count / elapsed, floor_count / floor_elapsed
    return {
        "verifications_per_s": round(rate),
        "rsa_verify_only_per_s": round(floor),
        "ratio_to_rsa_verify_only": round(rate / floor, 3),
        "target_per_s": 20_000,
        "meets_target": rate >= 20_000,
    }


def policy_decide(seconds: float) -> dict[str, object]:
    """auth_app.policy.decide with 10,000 rules: what a check costs the server past HTTP."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.cache import cache

    from auth_app.policy import CompiledPolicy, RuleSpec, decide

    rules = [RuleSpec(i, "bench", f"config:ns{i}/*", "read", "allow", 0) for i in range(10_000)]
    rules.append(RuleSpec(99_999, "bench", "config:ns42/secret*", "read", "deny", 5))
    started = time.perf_counter()
    policy = CompiledPolicy(rules)
    compile_ms = (time.perf_counter() - started) * 1000
    scopes = frozenset({"config:read"})
    rng = random.Random(7)
    resources = [f"config:ns{rng.randrange(12_000)}/production" for _ in range(5_000)]
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        resource = resources[i % len(resources)]
        t0 = time.perf_counter()
        cache.get("auth:policy-version")  # what is_allowed adds on a warm check
        decide(policy=policy, scopes=scopes, resource=resource, action="read", scope_suffices=True)
        samples.append(time.perf_counter() - t0)
        i += 1
    samples.sort()
    p50 = samples[len(samples) // 2] * 1e6
    p99 = samples[int(len(samples) * 0.99)] * 1e6
    return {
        "rules": len(rules),
        "checks": len(samples),
        "compile_ms": round(compile_ms, 1),
        "p50_us": round(p50, 1),
        "p99_us": round(p99, 1),
        "mean_us": round(statistics.fmean(samples) * 1e6, 1),
        "target_p99_us": 2000,
        "meets_target": p99 < 2000,
    }


@dataclass(frozen=True)
class Micro:
    name: str
    description: str
    run: Callable[[float], dict[str, object]]


MICRO: tuple[Micro, ...] = (
    Micro("jwt_verify", "SDK offline verification of a JWT access token, one core", jwt_verify),
    Micro(
        "policy_decide",
        "policy decision with 10,000 rules, in process (server side past HTTP)",
        policy_decide,
    ),
)
