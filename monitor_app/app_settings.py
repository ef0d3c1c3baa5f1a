"""Settings of the monitor service (merged into Django settings)."""

from platformsite.env import env, read

#: Seconds between two runs of the state loop (overdue checks, reminders, the alert outbox).
MONITOR_LOOP_SECONDS = read("MONITOR_LOOP_SECONDS", env.float, 1.0)
#: At most this many overdue checks are moved per run of the loop (the rest the next run).
MONITOR_LOOP_BATCH = read("MONITOR_LOOP_BATCH", env.int, 2000)
#: A service is healthy while at least this share of its nodes pass all their critical checks.
MONITOR_HEALTHY_SHARE = read("MONITOR_HEALTHY_SHARE", env.float, 0.5)
#: Longest check output kept, in bytes (longer output is cut and flagged ``truncated``).
MONITOR_MAX_OUTPUT_BYTES = read("MONITOR_MAX_OUTPUT_BYTES", env.int, 4096)
#: Largest results map of a check result, as compact JSON, in bytes.
MONITOR_MAX_RESULTS_BYTES = read("MONITOR_MAX_RESULTS_BYTES", env.int, 8192)
#: A check reported without an interval reports every this many seconds; its TTL defaults to 3x.
MONITOR_DEFAULT_INTERVAL = read("MONITOR_DEFAULT_INTERVAL", env.int, 10)
#: Largest batch of reports (and checks per report) one call may carry.
MONITOR_MAX_BATCH = read("MONITOR_MAX_BATCH", env.int, 1000)
#: Ping bodies are kept up to this many bytes (the ``Ping-Body-Limit`` header says so).
MONITOR_PING_BODY_LIMIT = read("MONITOR_PING_BODY_LIMIT", env.int, 10_000)
#: Where the hot path buffers steady success pings until the state loop stores them: auto (Redis
#: when the shared cache is Redis, else off), redis, memory (this process's; a crash loses up to a
#: loop interval of answered pings) or off (every ping is stored before it is answered).
MONITOR_PING_BUFFER = read("MONITOR_PING_BUFFER", env.str, "auto")
#: Pings kept per job check (the oldest are purged).
MONITOR_PINGS_KEPT = read("MONITOR_PINGS_KEPT", env.int, 100)
#: Ping rate limits: per client address, and per check (``count/period``, period s, m, h or d).
MONITOR_PING_RATE = read("MONITOR_PING_RATE", env.str, "600/min")
MONITOR_PING_CHECK_RATE = read("MONITOR_PING_CHECK_RATE", env.str, "120/min")
#: Seconds a process may use its copy of a service's failing nodes (discovery's ?passing=true).
MONITOR_HEALTH_CACHE_SECONDS = read("MONITOR_HEALTH_CACHE_SECONDS", env.float, 1.0)
#: Flips kept, in days (uptime history reads them).
MONITOR_FLIPS_KEPT_DAYS = read("MONITOR_FLIPS_KEPT_DAYS", env.int, 400)
#: Days a node that reported STOPPED is kept (drawn grey) before it and its checks are removed.
MONITOR_STOPPED_NODES_KEPT_DAYS = read("MONITOR_STOPPED_NODES_KEPT_DAYS", env.int, 7)
#: Stats samples: raw kept this many hours, per-minute samples this many days, hourly ones this many days.
MONITOR_STATS_RAW_HOURS = read("MONITOR_STATS_RAW_HOURS", env.int, 24)
MONITOR_STATS_MINUTE_DAYS = read("MONITOR_STATS_MINUTE_DAYS", env.int, 7)
MONITOR_STATS_HOUR_DAYS = read("MONITOR_STATS_HOUR_DAYS", env.int, 400)
#: Services reported one by one in /metrics (the rest are summed under service="_other").
MONITOR_METRICS_MAX_SERVICES = read("MONITOR_METRICS_MAX_SERVICES", env.int, 200)
