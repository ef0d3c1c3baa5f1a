"""What every db view shares: the base view, policy resources, the caller and the catalog lookup."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from rest_framework.request import Request

from auth_app.access import TokenInfo, actor, granted_scopes, role_names
from dbproxy_app import catalog, names
from dbproxy_app.catalog import Entry
from dbproxy_app.models import Database
from dbproxy_app.records import Caller
from platformsite.api.errors import Denied, NotFound
from platformsite.api.views import ServiceView


def database_resource(database: str) -> str:
    """The policy resource of a database as a whole: ``db:<database>/`` (``db:<database>/*`` covers it)."""
    return f"db:{database}/"


def table_resource(database: str, table: str) -> str:
    return f"db:{database}/{table}"


def check_database(name: str) -> str:
    """A database name from a URL: 404 unless no database could have it."""
    if not names.DATABASE.matches(name) or name in names.RESERVED:
        raise NotFound(f"No database named {name[:60]!r}.", "database_not_found", {"database": name[:60]})
    return name


def check_table(database: str, name: str) -> str:
    if not names.TABLE.matches(name):
        raise NotFound(
            f"Database {database!r} has no table {name[:60]!r}.",
            "table_not_found",
            {"database": database, "table": name[:60]},
        )
    return name


def is_admin(request: Request) -> bool:
    return "admin" in granted_scopes(request)


def caller(request: Request) -> Caller:
    auth = getattr(request, "auth", None)
    token = auth if isinstance(auth, TokenInfo) else None
    claims = {
        "sub": actor(request),
        "client_id": token.client_id if token else "",
        "account": token.account_name if token else "",
    }
    return Caller(admin=is_admin(request), claims=claims, load_roles=lambda: role_names(request))


class DbView(ServiceView):
    """Base of the db views: ``db:<database>/`` and ``db:<database>/<table>`` policy resources."""

    service = "db"

    def entry(self, request: Request, database: str) -> Entry:
        """The database from the catalog; 403 ``database_confined`` if it is its owner's only."""
        found = catalog.entry(database)
        if found.owner_only and not is_admin(request) and actor(request) != found.owner:
            raise Denied(f"Database {database!r} is confined to its owner.", "database_confined")
        return found

    def reachable_databases(self, request: Request) -> QuerySet[Database]:
        """The databases not confined away from the caller (an owner-only database is its owner's
        and admins')."""
        if is_admin(request):
            return Database.objects.all()
        return Database.objects.filter(Q(owner_only=False) | Q(owner=actor(request)))

    def allowed_databases(self, request: Request, action: str = "read") -> Any:
        allows = self.allows(request, action)
        return lambda name: allows(database_resource(name))
