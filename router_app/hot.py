"""The router service's hot route (:mod:`platformsite.hotpath`).

``GET /api/v1/router/routes/<name>/`` (with ``?caller=`` or no query) from the cached routes
document: the call every SDK client repeats for every service it calls.  Request labels (the
``labels`` parameter or ``X-Micro-Label-*`` headers), a service this process has not read yet, a
routes document not cached, a caller name the query pattern does not take, and a refusal go to
the full view.
"""

from __future__ import annotations

import re

from platformsite.hotpath import Answer, HotRequest, HotRoute
from router_app import selectors, services
from router_app.api.views import HEADER_PREFIX, routes_cache_control

LABEL_HEADER = "HTTP_" + HEADER_PREFIX.upper().replace("-", "_")


def routes(request: HotRequest) -> Answer | None:
    name = request.args["name"]
    if not services.SERVICE.matches(name) or not request.allows(f"router:{name}", "read"):
        return None
    if any(key.startswith(LABEL_HEADER) for key in request.environ):
        return None
    document = selectors.routes_document_warm(name)
    if document is None:
        return None
    answer = selectors.routes_for(document, caller=request.args.get("caller"), labels={})
    return Answer.json(answer, ("Cache-Control", routes_cache_control(answer)))


ROUTES = [
    HotRoute(
        method="GET",
        url_name="router:routes",
        handler=routes,
        query=re.compile(r"(?:caller=(?P<caller>[A-Za-z0-9][A-Za-z0-9._@-]{0,199}))?"),
    ),
]
