"""The monitor's bench scenarios' bodies and set-ups (used by scenarios.py).

- ``monitor_report``: one node's report of 10 checks, all unchanged (the cache-only path): at
  1,000 results/s the fleet of the issue (10,000 checks every 10 s) is 100 of these a second.
- ``monitor_report_batch``: 100 nodes' reports of 10 checks each in one call (1,000 results).
- ``monitor_ping``: a job's success ping, ``GET /ping/<id>`` (a stored ping and a check update).
"""

from __future__ import annotations

import json

JOB_ID = "6b0f3c6e-5a4b-4c2d-9e8f-0a1b2c3d4e5f"
CHECKS = [{"name": f"check-{i}", "status": "passing", "output": "ok", "interval": 10} for i in range(10)]
REPORT = json.dumps(
    {"service": "bench-monitor", "node": "bench-node-0", "checks": CHECKS}, separators=(",", ":")
)
BATCH = json.dumps(
    {
        "reports": [
            {"service": "bench-monitor", "node": f"bench-node-{n}", "checks": CHECKS} for n in range(100)
        ]
    },
    separators=(",", ":"),
)
#: Two passing rounds bring every check to its steady state (counters at their caps).
REPORT_SETUP = (
    "import json, time; from monitor_app import services; "
    f"body = json.loads({BATCH!r}); "
    "parsed = [services.parse_report(r) for r in body['reports']]; "
    "services.reports_ingest(reports=parsed, now=time.time()); "
    "services.reports_ingest(reports=parsed, now=time.time() + 1)"
)
PING_SETUP = (
    "import uuid; from monitor_app.models import Check; "
    f"Check.objects.get_or_create(id=uuid.UUID('{JOB_ID}'), defaults=dict(service='bench-monitor', node='', "
    "name='bench-job', kind='period', interval=86400, ttl=3600, failures_before_critical=1, "
    "success_before_passing=1))"
)
