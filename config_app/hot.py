"""The config service's hot route: a warm resolved read (:mod:`platformsite.hotpath`).

``GET /api/v1/config/namespaces/<ns>/resolve[?env=<env>]`` from this process's copy of the
document, when the caller may read it and sees it masked (a caller holding ``config:secrets``
gets the revealed document from the full view).  ``path``, ``wait``, ``revision`` and every
other parameter go to the full view, and so does a namespace this process has not resolved yet.
"""

from __future__ import annotations

import re

from config_app import selectors
from config_app.api.views import SECRETS_SCOPE
from platformsite.api.validators import SLUG
from platformsite.hotpath import Answer, HotRequest, HotRoute, etag_matches


def resolve(request: HotRequest) -> Answer | None:
    ns, env = request.args["ns"], request.args.get("env", "default")
    if not SLUG.matches(ns) or not request.allows(f"config:{ns}/{env}", "read"):
        return None
    resolved = selectors.resolve_warm(ns, env)
    if resolved is None or (resolved.has_secrets and request.token.has_scope(SECRETS_SCOPE)):
        return None
    etag = ("ETag", resolved.etag)
    if etag_matches(request.header("If-None-Match"), resolved.etag):
        return Answer.not_modified(etag)
    return Answer(200, resolved.masked_body, (etag,))


ROUTES = [
    HotRoute(
        method="GET",
        url_name="config:resolve",
        query=re.compile(rf"(?:env=(?P<env>{SLUG.pattern}))?"),
        handler=resolve,
    )
]
