"""Settings of the events service (merged into Django settings)."""

from platformsite.env import env, read, strict_bool

#: Largest ``data`` of one event, in bytes of its JSON (or base64) form; 413 beyond.
EVENTS_MAX_DATA_BYTES = read("EVENTS_MAX_DATA_BYTES", env.int, 256 * 1024)
#: Most events in one published batch; 413 beyond.
EVENTS_MAX_BATCH = read("EVENTS_MAX_BATCH", env.int, 10_000)
#: Days events are kept, per type prefix ("" is the default); the longest matching prefix wins.
EVENTS_RETENTION_DAYS = read("EVENTS_RETENTION_DAYS", env.json, {"": 30})
#: Rows deleted per statement when purging.
EVENTS_PURGE_BATCH = read("EVENTS_PURGE_BATCH", env.int, 5000)
#: Counter shards per (type, minute): more shards, less lock waiting between concurrent publishers.
EVENTS_COUNT_SHARDS = read("EVENTS_COUNT_SHARDS", env.int, 32)
#: Hours minute counters are kept after being rolled up to hours.
EVENTS_MINUTE_COUNTS_KEEP_HOURS = read("EVENTS_MINUTE_COUNTS_KEEP_HOURS", env.int, 48)
#: Small publishes of one process share a transaction on PostgreSQL (see event_app/grouping.py).
EVENTS_GROUP_COMMIT = read("EVENTS_GROUP_COMMIT", strict_bool, True)
#: Push every stored event to websocket subscribers (off: no live stream, replay only).
EVENTS_LIVE_STREAM = read("EVENTS_LIVE_STREAM", strict_bool, True)
#: Most stored events replayed to a websocket that resumes with ``last_event_id``.
EVENTS_WS_REPLAY_MAX = read("EVENTS_WS_REPLAY_MAX", env.int, 10_000)
#: Webhook delivery: seconds before a request times out, attempts before dead-lettering,
#: first retry delay (doubling each attempt) and its cap.
EVENTS_WEBHOOK_TIMEOUT = read("EVENTS_WEBHOOK_TIMEOUT", env.float, 5.0)
EVENTS_WEBHOOK_MAX_ATTEMPTS = read("EVENTS_WEBHOOK_MAX_ATTEMPTS", env.int, 8)
EVENTS_WEBHOOK_BACKOFF_SECONDS = read("EVENTS_WEBHOOK_BACKOFF_SECONDS", env.float, 2.0)
EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS = read("EVENTS_WEBHOOK_BACKOFF_MAX_SECONDS", env.float, 600.0)
#: Deliveries one task run sends before handing over to a fresh task (keeps tasks short).
EVENTS_WEBHOOK_RUN_LIMIT = read("EVENTS_WEBHOOK_RUN_LIMIT", env.int, 200)

#: Seconds between runs of the task that sends due webhook deliveries, and between purges.
EVENTS_DELIVER_DUE_INTERVAL = read("EVENTS_DELIVER_DUE_INTERVAL", env.float, 5.0)
EVENTS_PURGE_INTERVAL = read("EVENTS_PURGE_INTERVAL", env.int, 3600)
