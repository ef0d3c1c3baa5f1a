"""Writes of the events service.

:func:`event_publish` is the one function every other service calls for its platform events
(types named ``<service>.<entity>.<verb>``, source ``/platform/<service>``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from event_app.models import Event


def event_publish(
    *,
    type: str,
    source: str,
    data: Any = None,
    subject: str = "",
    event_id: str | None = None,
    time: datetime | None = None,
    root_id: str = "",
    traceparent: str = "",
    extensions: dict[str, Any] | None = None,
    datacontenttype: str = "application/json",
) -> Event:
    """Store one event durably and return it; a re-sent (source, id) returns the stored one."""
    event = Event(
        event_id=event_id or uuid.uuid4().hex,
        source=source,
        type=type,
        time=time or timezone.now(),
        subject=subject,
        data=data,
        datacontenttype=datacontenttype,
        root_id=root_id,
        traceparent=traceparent,
        extensions=extensions or {},
    )
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        return Event.objects.get(source=source, event_id=event.event_id)
    return event
