"""How an event looks outside: the platform's JSON (API, websocket) and a CloudEvent (webhooks)."""

from __future__ import annotations

from typing import Any

from event_app.cloudevents import PLATFORM_ID_EXTENSION
from event_app.models import Event


def rfc3339(value) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def event_dict(event: Event) -> dict[str, Any]:
    """The platform's view: ``id`` is the platform's sequence, ``event_id`` the producer's id."""
    return {
        "id": event.id,
        "event_id": event.event_id,
        "source": event.source,
        "type": event.type,
        "specversion": event.specversion,
        "time": rfc3339(event.time),
        "subject": event.subject,
        "datacontenttype": event.datacontenttype,
        "dataschema": event.dataschema,
        "data": event.data,
        "data_base64": event.data_base64,
        "extensions": event.extensions,
        "root_id": event.root_id,
        "traceparent": event.traceparent,
        "received": rfc3339(event.received),
    }


def cloudevent_dict(event: Event) -> dict[str, Any]:
    """CloudEvents 1.0 JSON format; the platform's sequence rides along as extension ``platformid``."""
    body: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.event_id,
        "source": event.source,
        "type": event.type,
        "time": rfc3339(event.time),
    }
    for name in ("subject", "datacontenttype", "dataschema"):
        if value := getattr(event, name):
            body[name] = value
    body.update(event.extensions or {})
    if event.root_id:
        body["rootid"] = event.root_id
    if event.traceparent:
        body["traceparent"] = event.traceparent
    body[PLATFORM_ID_EXTENSION] = str(event.id)
    if event.data_base64:
        body["data_base64"] = event.data_base64
    elif event.data is not None:
        body["data"] = event.data
    return body
