"""``manage.py discovery_seed SERVICE --nodes N``: load many nodes at once (benchmarks, demos).

Nodes ``<service>-0`` ... ``<service>-<N-1>`` are written in bulk with their heartbeat entries in
the shared cache, one change is recorded for the service and its cached document is rebuilt, as
if they had registered one by one (without N events).
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.core.management.base import BaseCommand
from django.db import transaction

from discovery_app import selectors, services
from discovery_app.models import Node, Service


class Command(BaseCommand):
    help = "Register many nodes of one service in bulk (benchmarks and demos)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("service")
        parser.add_argument("--nodes", type=int, default=10)
        parser.add_argument("--service-version", dest="service_version", default="1.0")
        parser.add_argument("--interval", type=int, default=10)
        parser.add_argument("--ttl", type=int, help="Default: 3 x interval.")

    def handle(
        self, *args, service: str, nodes: int, service_version: str, interval: int, ttl: int | None, **options
    ):
        version = service_version
        ttl = ttl or 3 * interval
        now = time.time()
        stamp = services.to_datetime(now)
        ids = [f"{service}-{i}" for i in range(nodes)]
        with transaction.atomic():
            target, _ = Service.objects.get_or_create(name=service, version=version)
            Node.objects.filter(id__in=ids).delete()
            Node.objects.bulk_create(
                [
                    Node(
                        id=node_id,
                        service=target,
                        address=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                        port=8000 + i % 1000,
                        metadata={"zone": f"zone-{i % 3}"},
                        endpoints=[
                            {"name": f"{service}.Call", "request": {"type": "object"}, "response": {}}
                        ],
                        interval=interval,
                        ttl=ttl,
                        deregister_after=300,
                        registered=stamp,
                        last_heartbeat=stamp,
                    )
                    for i, node_id in enumerate(ids)
                ],
                batch_size=2000,
            )
            node = Node.objects.get(id=ids[0])
            services._record(
                [services._Change("update", service, version, services._snapshot(node, version), "seeded")],
                now,
            )
        for start in range(0, nodes, 5000):
            cache.set_many(
                {
                    selectors.heartbeat_key(node_id): (now, ttl, service)
                    for node_id in ids[start : start + 5000]
                },
                timeout=ttl + selectors.HEARTBEAT_GRACE_SECONDS,
            )
        self.stdout.write(
            f"{nodes} nodes of {service} {version} registered (interval {interval} s, ttl {ttl} s)"
        )
