"""Settings of the discovery service (merged into Django settings)."""

from platformsite.env import env, read

#: Seconds between two sweeps (expiry, deregistration, heartbeat flush, safety valve).
DISCOVERY_SWEEP_SECONDS = read("DISCOVERY_SWEEP_SECONDS", env.float, 1.0)
#: At most this many nodes are expired (and as many removed) per sweep; the rest the next second.
DISCOVERY_SWEEP_BATCH = read("DISCOVERY_SWEEP_BATCH", env.int, 1000)
#: Heartbeat interval of a node that registers without one; its TTL defaults to 3 x interval.
DISCOVERY_DEFAULT_INTERVAL = read("DISCOVERY_DEFAULT_INTERVAL", env.int, 10)
#: Seconds a critical (expired) node stays listed before it is removed from the registry.
DISCOVERY_DEREGISTER_AFTER = read("DISCOVERY_DEREGISTER_AFTER", env.int, 300)
#: Largest node metadata (and service metadata), as compact JSON, in bytes.
DISCOVERY_MAX_METADATA_BYTES = read("DISCOVERY_MAX_METADATA_BYTES", env.int, 4096)
#: Largest endpoints list of a node, as compact JSON, in bytes.
DISCOVERY_MAX_ENDPOINTS_BYTES = read("DISCOVERY_MAX_ENDPOINTS_BYTES", env.int, 65536)
#: Safety valve: if more than this share of all nodes would expire (or expired within
#: DISCOVERY_VALVE_WINDOW_SECONDS), the sweep keeps them and marks the registry degraded.
DISCOVERY_VALVE_SHARE = read("DISCOVERY_VALVE_SHARE", env.float, 0.5)
#: The valve only acts on a registry of at least this many nodes.
DISCOVERY_VALVE_MIN_NODES = read("DISCOVERY_VALVE_MIN_NODES", env.int, 4)
DISCOVERY_VALVE_WINDOW_SECONDS = read("DISCOVERY_VALVE_WINDOW_SECONDS", env.int, 60)
#: Longest the valve holds overdue nodes (0: as long as the registry stays degraded).
DISCOVERY_VALVE_MAX_HOLD_SECONDS = read("DISCOVERY_VALVE_MAX_HOLD_SECONDS", env.int, 900)
#: Watch history (results) kept for this long.
DISCOVERY_HISTORY_SECONDS = read("DISCOVERY_HISTORY_SECONDS", env.int, 3600)
#: Seconds between full sweeps (every node and heartbeat entry: heartbeat flush, re-indexing
#: deadlines).  The sweeps between them read only the nodes the deadline index says may be
#: overdue; without Redis every sweep is a full one.
DISCOVERY_FULL_SWEEP_SECONDS = read("DISCOVERY_FULL_SWEEP_SECONDS", env.float, 15.0)
#: A node's last heartbeat is written to the database when the cached one is this much newer.
DISCOVERY_FLUSH_SECONDS = read("DISCOVERY_FLUSH_SECONDS", env.int, 15)
#: At most this many heartbeat times are written per full sweep (the oldest first; the rest wait).
DISCOVERY_FLUSH_BATCH = read("DISCOVERY_FLUSH_BATCH", env.int, 20000)
#: Longest a blocking query may wait (?wait=), and how often it looks at the service's index.
DISCOVERY_MAX_WAIT_SECONDS = read("DISCOVERY_MAX_WAIT_SECONDS", env.float, 60.0)
DISCOVERY_BLOCKING_POLL_SECONDS = read("DISCOVERY_BLOCKING_POLL_SECONDS", env.float, 0.05)

#: Seconds a process may serve a service lookup from its own memory (0: always ask the shared
#: cache).  Trades up to that much staleness on other processes for one cache read less.
DISCOVERY_LOCAL_CACHE_SECONDS = read("DISCOVERY_LOCAL_CACHE_SECONDS", env.float, 0.0)
