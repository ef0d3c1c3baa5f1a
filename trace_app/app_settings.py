"""Settings of the trace service (merged into Django settings)."""

from platformsite.env import env, read, strict_bool

#: The span store class (trace_app/store): the platform's own database by default.
TRACE_STORE = read("TRACE_STORE", env.str, "trace_app.store.sql.SqlStore")
#: Days spans are kept (a service's keep rule may say otherwise).
TRACE_RETENTION_DAYS = read("TRACE_RETENTION_DAYS", env.int, 7)
#: Day partitions created ahead of today on PostgreSQL.
TRACE_PARTITIONS_AHEAD = read("TRACE_PARTITIONS_AHEAD", env.int, 3)
#: Largest ingest request body, compressed or not, in bytes (413 beyond).
TRACE_MAX_BODY_BYTES = read("TRACE_MAX_BODY_BYTES", env.int, 20 * 1024 * 1024)
#: Tag keys whose values are kept for the search form and Zipkin's autocomplete. Span attributes
#: only: a resource attribute (``deployment.environment``) is kept with the span, not as a tag.
TRACE_AUTOCOMPLETE_KEYS = read(
    "TRACE_AUTOCOMPLETE_KEYS",
    env.list,
    ["http.method", "http.request.method", "http.route", "http.status_code"],
)
#: How far back a search looks when it names no time range, in hours.
TRACE_DEFAULT_LOOKBACK_HOURS = read("TRACE_DEFAULT_LOOKBACK_HOURS", env.int, 24)
#: Most traces one search answers.
TRACE_SEARCH_MAX = read("TRACE_SEARCH_MAX", env.int, 1000)
#: Push the summaries of ingested traces to ``/ws/trace/`` (the dashboard's live list).
TRACE_LIVE_STREAM = read("TRACE_LIVE_STREAM", strict_bool, True)
#: Seconds the ingest answers 503 with Retry-After for when the database is unavailable.
TRACE_RETRY_AFTER = read("TRACE_RETRY_AFTER", env.int, 5)
#: The platform traces the requests it answers, to itself (read at start-up; see docs/trace.md).
PLATFORM_SELF_TRACE = read("PLATFORM_SELF_TRACE", strict_bool, False)
#: The share of requests traced when no caller's ``traceparent`` decides (0.0 to 1.0).
PLATFORM_SELF_TRACE_RATIO = read("PLATFORM_SELF_TRACE_RATIO", env.float, 0.01)
#: The service name the platform's own spans carry.
PLATFORM_SELF_TRACE_SERVICE = read("PLATFORM_SELF_TRACE_SERVICE", env.str, "micro-platform")
