"""Settings of the db service (merged into Django settings)."""

from platformsite.env import env, read, strict_bool

#: Largest record (its data as compact JSON, or its bytes, plus its metadata), in bytes: 413 beyond.
DB_MAX_RECORD_BYTES = read("DB_MAX_RECORD_BYTES", env.int, 1024 * 1024)
#: Most records one bulk call may create, update and delete (in one transaction).
DB_MAX_BULK = read("DB_MAX_BULK", env.int, 10_000)
#: Page size of a query without ``limit``, and the most ``limit`` may ask for.
DB_DEFAULT_LIMIT = read("DB_DEFAULT_LIMIT", env.int, 100)
DB_MAX_LIMIT = read("DB_MAX_LIMIT", env.int, 1000)
#: ``Prefer: count=estimated`` counts exactly below this many planned rows, else answers the plan.
DB_ESTIMATED_COUNT_THRESHOLD = read("DB_ESTIMATED_COUNT_THRESHOLD", env.int, 10_000)
#: Connections of each external PostgreSQL database's pool (a database's ``options`` may lower it).
DB_POOL_MAX = read("DB_POOL_MAX", env.int, 10)
#: Seconds a request waits for a pooled connection before the database is answered 503.
DB_POOL_TIMEOUT_SECONDS = read("DB_POOL_TIMEOUT_SECONDS", env.float, 5.0)
#: Seconds a database found unreachable (after a request waited DB_POOL_TIMEOUT_SECONDS) is
#: answered 503 at once, with Retry-After, before a request waits for it again.
DB_DOWN_SECONDS = read("DB_DOWN_SECONDS", env.float, 5.0)
#: Seconds to open a connection to an external database.
DB_CONNECT_TIMEOUT_SECONDS = read("DB_CONNECT_TIMEOUT_SECONDS", env.int, 3)
#: Longest statement on an external database (PostgreSQL ``statement_timeout``; SQLite's busy wait).
DB_STATEMENT_TIMEOUT_MS = read("DB_STATEMENT_TIMEOUT_MS", env.int, 5000)
#: Where ``sqlite`` databases keep their files (a database's DSN is a file name inside it).
DB_SQLITE_DIR = read("DB_SQLITE_DIR", env.str, "")
#: Find a database missing from the catalog as the discovery service ``db.<name>`` (its node
#: metadata ``driver`` and ``dsn_ref``; see docs/db.md).  Off by default: a trust to grant.
DB_DISCOVERY_LOOKUP = read("DB_DISCOVERY_LOOKUP", strict_bool, False)
