"""Settings for the test suite: the project's settings in test mode, tasks run inline.

``DATABASE_URL`` and ``REDIS_URL`` are honoured, so the same suite runs on PostgreSQL and Redis
in CI.
"""

import os
import tempfile

os.environ.setdefault("PLATFORM_ENV", "test")
os.environ.setdefault("PLATFORM_TASK_MODE", "eager")
# The suite's webhook receivers listen on 127.0.0.1 (its own processes inherit this too).
os.environ.setdefault("PLATFORM_ALLOW_PRIVATE_TARGETS", "true")
os.environ.setdefault("PLATFORM_VAR_DIR", tempfile.mkdtemp(prefix="platform-test-"))

from platformsite.settings import *  # noqa: F403

# A file, not Django's in-memory default: the live server's threads then get connections of
# their own instead of sharing the test thread's, whose transactions they would interleave with.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(os.environ["PLATFORM_VAR_DIR"], "test.sqlite3")
    }
