"""Settings of the auth service that belong to no other (merged into Django settings)."""

from platformsite.env import env, read

#: Seconds between purges of expired tokens (a periodic task).
PLATFORM_TOKEN_PURGE_INTERVAL = read("PLATFORM_TOKEN_PURGE_INTERVAL", env.int, 3600)
