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
    from auth_app.policy import CompiledPolicy, RuleSpec, decide
    from auth_app.selectors import policy_version

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
        policy_version()  # what is_allowed adds on a warm check (a shared-cache read once a second)
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


def sdk_config_get(seconds: float) -> dict[str, object]:
    """``Config.get`` of the SDK from its merged snapshot, against a bare nested-dict walk."""
    import tempfile
    from pathlib import Path

    from platform_client.config import Config, FileSource

    document = {
        "db": {"host": "db.prod", "port": 5432, "pool": {"min": 2, "max": 20}},
        "log": {"level": "info"},
        "features": {f"flag{i}": i % 2 == 0 for i in range(50)},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(document))
        config = Config([FileSource(path)])
    paths = ["db.host", "db/pool/max", "log.level", "features.flag7"]
    walk = [tuple(p.replace("/", ".").split(".")) for p in paths]

    def sdk() -> None:
        for p in paths:
            config.get(p)

    def bare() -> None:
        for segments in walk:
            node = document
            for segment in segments:
                node = node[segment]

    count, elapsed = _timed(sdk, seconds / 2)
    bare_count, bare_elapsed = _timed(bare, seconds / 2)
    per_s = count * len(paths) / elapsed
    bare_per_s = bare_count * len(paths) / bare_elapsed
    return {
        "reads_per_s": round(per_s),
        "bare_dict_walk_per_s": round(bare_per_s),
        "ratio_to_bare": round(per_s / bare_per_s, 3),
        "target_per_s": 1_000_000,
        "meets_target": per_s >= 1_000_000,
    }


def sdk_discovery_get_service(seconds: float) -> dict[str, object]:
    """``Discovery.get_service`` of the SDK from its local cache (a 10-node service)."""
    from platform_client.discovery import Discovery
    from platform_client.session import PlatformSession

    discovery = Discovery(PlatformSession("http://127.0.0.1:9", "bench", "unused"))
    nodes = [
        {"id": f"n{i}", "address": f"10.0.0.{i}", "port": 8080, "metadata": {}, "status": "passing"}
        for i in range(10)
    ]
    discovery._store("orders", {"name": "orders", "index": 1, "versions": [{"version": "1", "nodes": nodes}]})
    count, elapsed = _timed(lambda: discovery.get_service("orders"), seconds)
    per_s = count / elapsed
    return {"lookups_per_s": round(per_s), "target_per_s": 500_000, "meets_target": per_s >= 500_000}


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
    Micro("sdk_config_get", "SDK Config.get from the merged snapshot, one core", sdk_config_get),
    Micro(
        "sdk_discovery_get_service",
        "SDK Discovery.get_service from the local cache, one core",
        sdk_discovery_get_service,
    ),
)


# --- PostgreSQL baselines for event publishing (run only when DATABASE_URL is PostgreSQL) -----------

_EVENT_COLUMNS = (
    "event_id",
    "source",
    "type",
    "specversion",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
    "extensions",
    "root_id",
    "traceparent",
    "received",
)


def _pg_dsn() -> str | None:
    import os

    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _event_rows(n: int, tag: str) -> list[tuple]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return [
        (
            f"{tag}-{i}",
            "/bench/raw",
            "bench.created",
            "1.0",
            now,
            f"s/{i}",
            "application/json",
            "",
            json.dumps({"n": i, "pad": "x" * 64}),
            "",
            "{}",
            "",
            "",
            now,
        )
        for i in range(n)
    ]


def events_copy(seconds: float) -> dict[str, object]:
    """Raw psycopg COPY of 1,000-event batches into the events table (the batched-publish baseline)."""
    import uuid

    import psycopg

    dsn = _pg_dsn()
    if dsn is None:
        return {"skipped": "needs DATABASE_URL=postgres://..."}
    copied, started = 0, time.perf_counter()
    with psycopg.connect(dsn) as conn:
        while time.perf_counter() - started < seconds:
            rows = _event_rows(1000, uuid.uuid4().hex)
            with (
                conn.cursor() as cur,
                cur.copy(f"COPY event_app_event ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            copied += len(rows)
    return {"events_per_s": round(copied / (time.perf_counter() - started)), "batch": 1000}


def events_insert_commit(seconds: float) -> dict[str, object]:
    """Raw INSERT + COMMIT per event from 64 connections (the durable single-publish baseline)."""
    import threading
    import uuid

    import psycopg

    dsn = _pg_dsn()
    if dsn is None:
        return {"skipped": "needs DATABASE_URL=postgres://..."}
    counts = [0] * 64
    deadline = time.perf_counter() + seconds
    columns, params = ", ".join(_EVENT_COLUMNS), ", ".join(["%s"] * len(_EVENT_COLUMNS))
    sql = f"INSERT INTO event_app_event ({columns}) VALUES ({params})"  # noqa: S608 (constant names)

    def writer(slot: int) -> None:
        tag = uuid.uuid4().hex
        with psycopg.connect(dsn) as conn:
            while time.perf_counter() < deadline:
                conn.execute(sql, _event_rows(1, f"{tag}-{counts[slot]}")[0])
                conn.commit()
                counts[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"events_per_s": round(sum(counts) / (time.perf_counter() - started)), "connections": 64}


MICRO = (
    *MICRO,
    Micro("events_copy", "raw psycopg COPY of 1,000-event batches (PostgreSQL only)", events_copy),
    Micro(
        "events_insert_commit",
        "raw INSERT + COMMIT per event, 64 connections (PostgreSQL only)",
        events_insert_commit,
    ),
)
