"""A worker process writing multiprocess metrics (``python -m tests.platform_client.metrics_worker N``)."""

import os
import sys

from platform_client.metrics import Metrics

metrics = Metrics("orders")
metrics.counter("orders_placed_total", "Orders placed.", labels=("channel",)).labels(channel="web").inc(
    int(sys.argv[1])
)
metrics.gauge("orders_in_flight", "Orders being placed.").set(1)
print(os.getpid(), flush=True)
