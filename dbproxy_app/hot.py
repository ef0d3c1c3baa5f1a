"""The db service's hot route (:mod:`platformsite.hotpath`): a record read by id.

``GET /api/v1/db/<database>/<table>/records/<id>/`` on an external backend (``postgresql``,
``sqlite``), when this process's catalog holds the database (trusted, see
:mod:`dbproxy_app.catalog`) and the table, the caller may read it (warm policy decision), and
no row policy applies to the caller (row policies need the caller's roles: a query).  The
record is read through the database's own pool, never the platform's database; the body and
``ETag`` are built by the same functions as the view's.  ``select`` and every other parameter,
a ``Range`` header, the ``platform`` backend, a cold catalog, a missing record and any error go
to the full view.
"""

from __future__ import annotations

from dbproxy_app import catalog, names, selectors
from dbproxy_app.api.records import etag
from dbproxy_app.records import NO_RULES, render
from platformsite.api.errors import PlatformError
from platformsite.hotpath import Answer, HotRequest, HotRoute


def record(request: HotRequest) -> Answer | None:
    database, table, record_id = request.args["database"], request.args["table"], request.args["record_id"]
    if (
        not names.DATABASE.matches(database)
        or database in names.RESERVED
        or not names.TABLE.matches(table)
        or not names.RECORD_ID.matches(record_id)
        or "HTTP_RANGE" in request.environ  # refused by the full view
        or not request.allows(f"db:{database}/{table}", "read")
    ):
        return None
    entry = catalog.entry_warm(database)
    if entry is None or entry.backend_name == "platform" or table not in entry.tables:
        return None
    admin = "admin" in request.token.scopes
    if entry.owner_only and not admin and request.token.subject != entry.owner:
        return None
    if not admin and any(policy.table in ("*", table) for policy in entry.policies):
        return None
    try:
        row = selectors.record_get(entry, table, record_id, NO_RULES)
    except PlatformError:  # not found, unavailable: the full view answers it
        return None
    return Answer.json(render(row), ("ETag", etag(row.version)))


ROUTES = [HotRoute(method="GET", url_name="db:record", handler=record)]
