"""``manage.py discovery_sweep [--loop] [--seconds N]``: run the registry sweep by hand.

Beat runs the sweep every DISCOVERY_SWEEP_SECONDS; this command runs it once, or in a loop on
the same period (for a setup without beat, e.g. a benchmark), and prints what it did.
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from discovery_app.services import registry_sweep


class Command(BaseCommand):
    help = "Expire, deregister and flush heartbeats now (or every DISCOVERY_SWEEP_SECONDS with --loop)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true")
        parser.add_argument("--seconds", type=float, default=0, help="With --loop: stop after this long.")

    def handle(self, *args, loop: bool, seconds: float, **options) -> None:
        totals = {"sweeps": 0, "expired": 0, "deregistered": 0, "held": 0, "flushed": 0, "slowest_ms": 0.0}
        end = time.monotonic() + seconds if seconds else float("inf")
        try:
            while True:
                started = time.monotonic()
                report = registry_sweep()
                took = time.monotonic() - started
                totals["sweeps"] += 1
                totals["expired"] += len(report.expired)
                totals["deregistered"] += len(report.deregistered)
                totals["held"] += len(report.held)
                totals["flushed"] += report.flushed
                totals["slowest_ms"] = max(totals["slowest_ms"], round(took * 1000, 1))
                if not loop or time.monotonic() >= end:
                    break
                time.sleep(max(0.0, settings.DISCOVERY_SWEEP_SECONDS - took))
        except KeyboardInterrupt:
            pass
        self.stdout.write(json.dumps(totals))
