"""The auth service's audit trail: account, role and rule changes and failed authentications.

Everything goes through :func:`audit`, which writes a structured log line and publishes a
platform event (source ``/platform/auth``) once the surrounding transaction commits.  Records
never carry secrets or tokens.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction

from event_app.services import event_publish
from platformsite.cache import CACHE_DOWN, shared_add

log = logging.getLogger("platform.audit")


#: Failed authentications published as events per caller address and minute (all are logged).
FAILURE_EVENTS_PER_MINUTE = 10


def audit(event_type: str, *, subject: str = "", **data: Any) -> None:
    """Record one auditable fact, typed ``auth.<entity>.<verb>``."""
    log.info(event_type, extra={"event_type": event_type, "subject": subject, "data": data})
    if event_type == "auth.authentication.failed" and _over_failure_budget(str(data.get("ip", ""))):
        return
    transaction.on_commit(
        lambda: event_publish(type=event_type, source="/platform/auth", subject=subject, data=data)
    )


def _over_failure_budget(ip: str) -> bool:
    """A flood of bad credentials from one address must not become a flood of inserts.  While the
    shared cache that counts them is down, failures are only logged."""
    key = f"auth:failure-events:{ip}:{int(time.time() // 60)}"
    try:
        return shared_add(key, 1, 70) > FAILURE_EVENTS_PER_MINUTE
    except CACHE_DOWN:
        return True
