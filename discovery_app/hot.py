"""The discovery service's hot routes (:mod:`platformsite.hotpath`).

- ``GET /api/v1/discovery/services/<name>/`` from this process's copy of the service's
  document; filters (``version``, ``label``, ``passing``) and blocking queries (``index``) go to
  the full view, and so does a service this process has not read yet.
- ``POST /api/v1/discovery/nodes/<id>/heartbeat/`` with no body; an unknown or expired node
  (``404 node_not_registered``) and a refusal are answered by the full view.
"""

from __future__ import annotations

from rest_framework.exceptions import APIException

from discovery_app import selectors, services
from platformsite.api.errors import Denied
from platformsite.hotpath import Answer, HotRequest, HotRoute, etag_matches


def service(request: HotRequest) -> Answer | None:
    name = request.args["name"]
    if not services.SERVICE_NAME.match(name) or not request.allows(f"discovery:{name}", "read"):
        return None
    entry = selectors.service_entry_warm(name)
    if entry is None or entry.body is None:
        return None
    headers = (("ETag", entry.etag), ("X-Discovery-Index", str(entry.index)))
    if etag_matches(request.header("If-None-Match"), entry.etag):
        return Answer.not_modified(*headers)
    return Answer(200, entry.body, headers)


def heartbeat(request: HotRequest) -> Answer | None:
    if not services.NODE_ID.match(request.args["node_id"]):
        return None
    try:
        renewed = services.node_heartbeat(
            node_id=request.args["node_id"],
            allowed=lambda name: request.allows(f"discovery:{name}", "write"),
        )
    except (APIException, Denied):  # not registered; not allowed, or not decidable without a query
        return None
    return Answer.json(renewed)


ROUTES = [
    HotRoute(method="GET", url_name="discovery:service", handler=service),
    HotRoute(method="POST", url_name="discovery:heartbeat", handler=heartbeat),
]
