"""Settings of the config service (merged into Django settings)."""

from platformsite.env import env, read

#: Largest canonical JSON size of one layer, in bytes (a larger write gets 413).
CONFIG_MAX_LAYER_BYTES = read("CONFIG_MAX_LAYER_BYTES", env.int, 1024 * 1024)
#: Longest long-poll wait (``?wait=``) in seconds.
CONFIG_MAX_WAIT_SECONDS = read("CONFIG_MAX_WAIT_SECONDS", env.float, 60.0)
#: How often a long-poll looks at the shared cache for a change, in seconds.
CONFIG_WATCH_POLL_SECONDS = read("CONFIG_WATCH_POLL_SECONDS", env.float, 0.05)
#: How long a process trusts its own copy of a resolved document without asking the shared cache
#: (0: every read asks, so a write on any node is seen by the next read on every node; 1: reads on
#: other nodes may lag a write by up to 1 s, and skip the shared cache in between).
CONFIG_LOCAL_CACHE_SECONDS = read("CONFIG_LOCAL_CACHE_SECONDS", env.float, 0.0)
