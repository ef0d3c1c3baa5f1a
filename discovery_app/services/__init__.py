"""Writes of the discovery service, one module per use case: registration, heartbeats, the sweep.

Every change records a :class:`~discovery_app.models.Result` under the service's next index;
once the transaction commits, the service's cached document is rebuilt, the results are pushed
to websocket watchers and platform events are published (``discovery.node.registered``,
``.deregistered``, ``.expired``; ``discovery.registry.degraded`` / ``.recovered``).

Heartbeats never touch the database: :func:`node_heartbeat` renews the node's entry in the
shared cache, and :func:`registry_sweep` (beat, every second) reads those entries to expire
nodes past their TTL and flushes the heartbeat times to the database in bulk.
"""

from discovery_app.services.common import (
    ALL_GROUP,
    NODE_ID,
    NODE_ID_PATTERN,
    SERVICE_NAME,
    SERVICE_NAME_PATTERN,
    SWEEP_LOCK_KEY,
    NodeNotRegistered,
    _Change,
    _record,
    _snapshot,
    group_name,
    publish_results,
    result_data,
    to_datetime,
    validate_registration,
)
from discovery_app.services.heartbeats import node_heartbeat, node_heartbeats
from discovery_app.services.registration import node_deregister, node_register
from discovery_app.services.sweep import SweepReport, registry_sweep, results_purge

__all__ = [
    "ALL_GROUP",
    "NODE_ID",
    "NODE_ID_PATTERN",
    "SERVICE_NAME",
    "SERVICE_NAME_PATTERN",
    "SWEEP_LOCK_KEY",
    "NodeNotRegistered",
    "SweepReport",
    "_Change",
    "_record",
    "_snapshot",
    "group_name",
    "node_deregister",
    "node_heartbeat",
    "node_heartbeats",
    "node_register",
    "publish_results",
    "registry_sweep",
    "result_data",
    "results_purge",
    "to_datetime",
    "validate_registration",
]
