"""The events service's hot route: a small publish through the group writer (:mod:`platformsite.hotpath`).

``POST /api/v1/events/`` with a JSON body of up to 64 KiB (native, structured or batch mode;
binary mode too), when the events are valid, the caller may write every type among them, and
they may go through the group writer (PostgreSQL, a small request).  The answer, like the full
view's, comes once the events are committed; the request thread itself never holds a database
connection.  Invalid events, refusals and everything else are answered by the full view.

A write that fails here (the database is unreachable, say) passes the request to the full view
with the parsed events handed over, ids included: the view writes those very events, and since
events are unique by source and id, one the failed attempt did commit is acknowledged as a
duplicate, never stored twice (a native event without an id got its id here, once).
"""

from __future__ import annotations

from event_app import grouping, services
from event_app.api.views import published
from event_app.cloudevents import InvalidEvents, UnsupportedMediaType, parse_request
from event_app.filters import type_resource
from platformsite.hotpath import Answer, HotRequest, HotRoute

#: Larger requests are batches for the full view (which would parse them just as well): the group
#: writer takes at most grouping.MAX_GROUPED_EVENTS events a request anyway.
MAX_BODY = 64 * 1024


def publish(request: HotRequest) -> Answer | None:
    if not grouping.available():  # the view would parse the body again
        return None
    try:
        events, _ = parse_request(request.headers(), request.body)
    except (InvalidEvents, UnsupportedMediaType):
        return None
    if not grouping.groupable(events):
        return None
    if not all(request.allows(type_resource(type_), "write") for type_ in {event.type for event in events}):
        return None
    request.hand_over("events", events)
    body, status = published(services.events_store_grouped(events=events))
    return Answer.json(body, status=status)


ROUTES = [HotRoute(method="POST", url_name="events:root", handler=publish, max_body=MAX_BODY)]
