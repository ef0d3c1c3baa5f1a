"""The auth service's audit trail: account, role and rule changes and failed authentications.

Everything goes through :func:`audit`, which writes a structured log line and hands the record
to the platform event stream once event_app provides ``event_publish`` (the single place to
change when it does).  Records never carry secrets or tokens.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("platform.audit")


def audit(event_type: str, *, subject: str = "", **data: Any) -> None:
    """Record one auditable fact, typed ``auth.<entity>.<verb>``."""
    log.info(event_type, extra={"event_type": event_type, "subject": subject, "data": data})
