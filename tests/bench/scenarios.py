"""The benchmark scenarios: one small record each.  Add a hot path here to measure it.

A scenario names the server it loads (``target``), the request it repeats and what it is
compared with.  Every scenario is compared with the bare view (``bare.py``) answering a body of
the same size on the fastest server configuration the harness knows, measured in the same run.
A ``stack`` scenario may also name a ``peer``: another product doing the same job, measured side
by side (e.g. etcd range reads for config and discovery reads).

Header and body values may hold ``{token}`` (a bearer token with the scenario's scopes) and the
names of ``VALUES`` below; they are filled in when the run starts.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from tests.bench import monitor

#: The key and the 1 KB JSON document that the etcd peer serves (and later config scenarios).
ETCD_KEY = "/platform/config/bench/app"


def _document(size: int) -> str:
    """A config-like JSON document of exactly ``size`` bytes."""
    doc: dict[str, object] = {"namespace": "bench", "path": "app", "version": 1, "data": {}, "pad": ""}
    data = doc["data"]
    i = 0
    while len(json.dumps(doc, separators=(",", ":"))) + 40 < size:
        data[f"setting_{i:02d}"] = f"value-{i:02d}"
        i += 1
    doc["pad"] = "p" * (size - len(json.dumps(doc, separators=(",", ":"))))
    return json.dumps(doc, separators=(",", ":"))


ETCD_VALUE = _document(1024)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


#: 1,000 events without ids: every request stores 1,000 new events (ids are given by the platform).
EVENTS_BATCH = json.dumps(
    [
        {"type": "bench.created", "source": "/bench", "subject": f"s/{i}", "data": {"n": i, "pad": "x" * 64}}
        for i in range(1000)
    ],
    separators=(",", ":"),
)
#: 20 windows of one caller (one per node of bench-router), a recent start, 13 latency buckets each.
ROUTER_BATCH = json.dumps(
    {
        "windows": [
            {
                "service": "bench-router",
                "node": f"bench-router-{i}",
                "start": int(time.time()) // 10 * 10,
                "requests": 500,
                "successes": 497,
                "errors": 3,
                "consecutive_5xx": 1,
                "latency": {"buckets": {str(b): 40 for b in range(28, 40)} | {"40": 20}, "sum_ms": 12000.0},
            }
            for i in range(20)
        ]
    },
    separators=(",", ":"),
)
VALUES = {
    "router_batch": ROUTER_BATCH,
    "etcd_key_b64": b64(ETCD_KEY),
    "etcd_value_b64": b64(ETCD_VALUE),
    "events_batch": EVENTS_BATCH,
    "monitor_report": monitor.REPORT,
    "monitor_batch": monitor.BATCH,
}


#: Loads the bench namespace the config read scenarios resolve (four layers, ~1.2 KB).
CONFIG_SETUP = (
    "from config_app import services; from config_app.models import Namespace; "
    "Namespace.objects.filter(name='bench').exists() or services.namespace_create(name='bench'); "
    "services.layer_set(namespace='global', env='default', data={'log': {'level': 'info'}}, "
    "author='service:bench'); "
    "services.layer_set(namespace='bench', env='default', "
    "data={f'setting_{i:02d}': f'value-{i:02d}' for i in range(40)}, author='service:bench'); "
    "services.layer_set(namespace='bench', env='production', "
    "data={'setting_00': 'prod', 'db': {'host': 'db.prod'}}, author='service:bench')"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    #: Which server answers: "platform" (our production stack) or "etcd".
    target: Literal["platform", "etcd"]
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    #: "stack" measures the platform; "peer" measures another product for comparison.
    role: Literal["stack", "peer"] = "stack"
    #: Name of the peer scenario measured side by side with this one, if any.
    peer: str | None = None
    #: Scopes the platform token needs (target "platform" only).
    scopes: tuple[str, ...] = ()
    #: Executables that must exist for the scenario to run (it is skipped otherwise).
    requires: tuple[str, ...] = ()
    expect_status: int = 200
    #: Python run by ``manage.py shell -c`` once the platform is up, e.g. to load rules;
    #: ``{account}`` is the bench service account's name.
    setup: str = ""

    def fill(self, values: dict[str, str]) -> tuple[dict[str, str], str]:
        """Headers and body with the run's values (token, keys) filled in."""
        headers = {k: v.format(**values) for k, v in self.headers.items()}  # {token}, {basic}, ...
        body = self.body.format(**values) if self.body else ""
        return headers, body


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="noop",
        description="Authenticated no-op API view: bearer token validation and the API stack.",
        target="platform",
        path="/api/v1/monitor/ping/",
        headers={"Authorization": "Bearer {token}"},
        scopes=("monitor:read",),
    ),
    Scenario(
        name="introspect",
        description="RFC 7662 introspection of a valid token by a confidential client, warm caches.",
        target="platform",
        path="/o/introspect/",
        method="POST",
        headers={"Authorization": "Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        body="token={token}",
        scopes=("monitor:read",),
    ),
    Scenario(
        name="token_issue",
        description="Client-credentials token issue (a new JWT and a stored token row per call).",
        target="platform",
        path="/o/token/",
        method="POST",
        headers={"Authorization": "Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
        body="grant_type=client_credentials&scope=monitor%3Aread",
        scopes=("monitor:read",),
    ),
    Scenario(
        name="policy_check",
        description="POST /api/v1/auth/check/ for a caller whose role carries 10,000 rules.",
        target="platform",
        path="/api/v1/auth/check/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body='{{"resource": "config:ns7777/production", "action": "read"}}',
        scopes=("config:read",),
        setup=(
            "from auth_app.models import Account, Role, RoleBinding, Rule; "
            "from auth_app.selectors import bump_policy_version; "
            "role, _ = Role.objects.get_or_create(name='bench-10k'); "
            "Rule.objects.filter(role=role).delete(); "
            "Rule.objects.bulk_create([Rule(role=role, resource=f'config:ns{i}/*', action='read') "
            "for i in range(10000)] + [Rule(role=role, resource='config:bench/*', action='read')], "
            "batch_size=2000); "
            "RoleBinding.objects.get_or_create(role=role, account=Account.objects.get(name='{account}')); "
            "bump_policy_version()"
        ),
    ),
    Scenario(
        name="config_resolve",
        description="Warm resolved config read (~1.2 KB from four layers) from the read cache.",
        target="platform",
        path="/api/v1/config/namespaces/bench/resolve?env=production",
        headers={"Authorization": "Bearer {token}"},
        scopes=("config:read",),
        peer="etcd_range",
        setup=CONFIG_SETUP,
    ),
    Scenario(
        name="config_resolve_plain",
        description="config_resolve through a plain Django view and a warm-token decorator (plainview.py).",
        target="platform",
        path="/bench/plain/config/namespaces/bench/resolve?env=production",
        headers={"Authorization": "Bearer {token}"},
        scopes=("config:read",),
        setup=CONFIG_SETUP,
    ),
    Scenario(
        name="discovery_lookup",
        description="Cached service lookup (10 nodes) from the discovery read cache.",
        target="platform",
        path="/api/v1/discovery/services/bench-lookup/",
        headers={"Authorization": "Bearer {token}"},
        scopes=("discovery:read",),
        peer="etcd_range",
        setup="from django.core.management import call_command; "
        "call_command('discovery_seed', 'bench-lookup', '--nodes', '10', '--interval', '3600')",
    ),
    Scenario(
        name="discovery_heartbeat",
        description="Heartbeat of one of 10,000 registered nodes (shared cache only; run the sweep "
        "beside it: manage.py discovery_sweep --loop). Needs REDIS_URL: the seed's heartbeats live "
        "in the shared cache.",
        target="platform",
        path="/api/v1/discovery/nodes/bench-hb-17/heartbeat/",
        method="POST",
        headers={"Authorization": "Bearer {token}"},
        scopes=("discovery:write",),
        setup="from django.core.management import call_command; "
        "call_command('discovery_seed', 'bench-hb', '--nodes', '10000', '--interval', '10')",
    ),
    Scenario(
        name="router_routes",
        description="A caller's routes for a service of 20 nodes, from the cached routes document (hot).",
        target="platform",
        path="/api/v1/router/routes/bench-routes/?caller=checkout",
        headers={"Authorization": "Bearer {token}"},
        scopes=("router:read",),
        setup="from django.core.management import call_command; "
        "call_command('discovery_seed', 'bench-routes', '--nodes', '20', '--interval', '3600')",
    ),
    Scenario(
        name="router_stats",
        description="Stats ingest: one caller's 20 windows (20 nodes) in one call; every call upserts "
        "the same 20 rows (row locks: the worst case for concurrent callers).",
        target="platform",
        path="/api/v1/router/stats/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body="{router_batch}",
        scopes=("router:read", "router:report"),
        expect_status=202,
        setup="from django.core.management import call_command; "
        "call_command('discovery_seed', 'bench-router', '--nodes', '20', '--interval', '3600')",
    ),
    Scenario(
        name="events_batch",
        description="Publish 1,000 events in one request (compare events/s with events_copy).",
        target="platform",
        path="/api/v1/events/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body="{events_batch}",
        scopes=("events:write",),
        expect_status=201,
    ),
    Scenario(
        name="events_single",
        description="Publish one event, durably (compare with events_insert_commit).",
        target="platform",
        path="/api/v1/events/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body='{{"type": "bench.single", "source": "/bench", "data": {{"n": 1}}}}',
        scopes=("events:write",),
        expect_status=201,
    ),
    Scenario(
        name="monitor_report",
        description="A node's report of 10 unchanged check results (the cache-only path, no database write).",
        target="platform",
        path="/api/v1/monitor/reports/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body="{monitor_report}",
        scopes=("monitor:write",),
        setup=monitor.REPORT_SETUP,
    ),
    Scenario(
        name="monitor_report_batch",
        description="100 nodes' reports, 1,000 unchanged check results, in one call.",
        target="platform",
        path="/api/v1/monitor/reports/batch/",
        method="POST",
        headers={"Authorization": "Bearer {token}", "Content-Type": "application/json"},
        body="{monitor_batch}",
        scopes=("monitor:write",),
        setup=monitor.REPORT_SETUP,
    ),
    Scenario(
        name="monitor_ping",
        description="A job's success ping, GET /ping/<id> (no token; a stored ping and a check update).",
        target="platform",
        path=f"/ping/{monitor.JOB_ID}",
        setup=monitor.PING_SETUP,
    ),
    Scenario(
        name="db_read",
        description="Read one record by id (~300 B) from an external PostgreSQL database through the db "
        "service (an SQLite file database without DATABASE_URL).",
        target="platform",
        path="/api/v1/db/benchread/items/records/r1/",
        headers={"Authorization": "Bearer {token}"},
        scopes=("db:read",),
        setup="from tests.bench.db import setup_read; setup_read()",
    ),
    Scenario(
        name="db_query",
        description="A metadata query (meta.env=eq.prod, one match, newest first) on the db_read table.",
        target="platform",
        path="/api/v1/db/benchread/items/records/?meta.env=eq.prod&limit=10",
        headers={"Authorization": "Bearer {token}"},
        scopes=("db:read",),
        setup="from tests.bench.db import setup_read; setup_read()",
    ),
    Scenario(
        name="etcd_range",
        description="etcd range read of a 1 KB JSON value through its HTTP/JSON gateway "
        "(the peer for config and discovery reads).",
        target="etcd",
        path="/v3/kv/range",
        method="POST",
        headers={"Content-Type": "application/json"},
        body='{{"key": "{etcd_key_b64}"}}',
        role="peer",
        requires=("etcd",),
    ),
)


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise LookupError(name)
