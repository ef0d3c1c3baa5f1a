"""Settings of the router service (merged into Django settings)."""

from platformsite.env import env, read

#: Seconds between two runs of the evaluation task; each service is evaluated once its own
#: ``interval`` (Envoy's, 10 s by default) has passed since its last evaluation.
ROUTER_TICK_SECONDS = read("ROUTER_TICK_SECONDS", env.float, 2.0)
#: Windows a caller's statistics are counted in, in seconds (the SDK's default).
ROUTER_WINDOW_SECONDS = read("ROUTER_WINDOW_SECONDS", env.int, 10)
#: An evaluation reads the windows that started within this many seconds before it.
ROUTER_LOOKBACK_SECONDS = read("ROUTER_LOOKBACK_SECONDS", env.int, 20)
#: The newest this many windows are kept per (caller, service, node, endpoint); older ones go.
ROUTER_KEEP_WINDOWS = read("ROUTER_KEEP_WINDOWS", env.int, 30)
#: Most windows in one ingest call.
ROUTER_MAX_BATCH = read("ROUTER_MAX_BATCH", env.int, 5000)
#: A window whose start is further in the future than this (clock skew) is refused.
ROUTER_MAX_SKEW_SECONDS = read("ROUTER_MAX_SKEW_SECONDS", env.int, 60)
#: Decision events are kept this many days.
ROUTER_EVENT_DAYS = read("ROUTER_EVENT_DAYS", env.int, 7)
#: Seconds a routes answer may be used by a client before it must ask again.
ROUTER_ROUTES_TTL_SECONDS = read("ROUTER_ROUTES_TTL_SECONDS", env.int, 30)
#: Latency charged per failed call when weighing a node (ms): a node that fails fast must not
#: look fast.  The SDK charges the same per failure.
ROUTER_FAILURE_PENALTY_MS = read("ROUTER_FAILURE_PENALTY_MS", env.float, 5000.0)
