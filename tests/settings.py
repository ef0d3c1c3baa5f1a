"""Settings for the test suite: the project's settings in test mode, tasks run inline.

``DATABASE_URL`` and ``REDIS_URL`` are honoured, so the same suite runs on PostgreSQL and Redis
in CI.
"""

import os
import tempfile

os.environ.setdefault("PLATFORM_ENV", "test")
os.environ.setdefault("PLATFORM_TASK_MODE", "eager")
os.environ.setdefault("PLATFORM_VAR_DIR", tempfile.mkdtemp(prefix="platform-test-"))

from platformsite.settings import *  # noqa: F403
