"""The db service's catalog API: databases, their tables and row policies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.access import actor
from dbproxy_app import names, services
from dbproxy_app.api import serializers as io
from dbproxy_app.api.common import (
    DbView,
    check_database,
    check_table,
    database_resource,
    table_resource,
)
from dbproxy_app.models import Database, RowPolicy, Table
from platformsite.api.errors import NotFound
from platformsite.api.schema import ERROR
from platformsite.api.views import one_or_404, validated

MANAGE = "db:manage"


class DatabaseListView(DbView):
    """The databases the caller may read (cursor pages by name); registering one needs db:manage."""

    required_scopes = {"GET": "db:read", "POST": MANAGE}

    def resources(self, request: Request, **kwargs: Any):
        if request.method == "POST" and isinstance(request.data, dict):
            name = request.data.get("name")
            if isinstance(name, str):
                services.check_database_name(name)
                return (database_resource(name),)
        return ()

    @extend_schema(responses=io.DatabaseOutput(many=True))
    def get(self, request: Request) -> Response:
        allowed = self.allowed_databases(request)
        return self.paginate(
            self.reachable_databases(request),
            ordering="name",
            render=lambda rows: io.DatabaseOutput([row for row in rows if allowed(row.name)], many=True).data,
        )

    @extend_schema(request=io.DatabaseInput, responses={201: io.DatabaseOutput})
    def post(self, request: Request) -> Response:
        data = validated(io.DatabaseInput, request.data)
        database = services.database_create(**data, owner=actor(request))
        return Response(io.DatabaseOutput(database).data, status=status.HTTP_201_CREATED)


class DatabaseLookup(DbView):
    def resources(self, request: Request, database: str, **kwargs: Any):
        check_database(database)
        return (database_resource(database),)

    def database(self, request: Request, name: str) -> Database:
        self.entry(request, name)  # 404 if none, 403 if confined to another owner
        return one_or_404(Database, f"No database named {name!r}.", name=name)


class DatabaseDetailView(DatabaseLookup):
    """A database (its DSN never shown); changing or removing it needs db:manage."""

    required_scopes = {"GET": "db:read", "PATCH": MANAGE, "DELETE": MANAGE}

    @extend_schema(responses=io.DatabaseOutput)
    def get(self, request: Request, database: str) -> Response:
        return Response(io.DatabaseOutput(self.database(request, database)).data)

    @extend_schema(request=io.DatabaseUpdateInput, responses=io.DatabaseOutput)
    def patch(self, request: Request, database: str) -> Response:
        found = self.database(request, database)
        changes = validated(io.DatabaseUpdateInput, request.data)
        return Response(io.DatabaseOutput(services.database_update(database=found, **changes)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, database: str) -> Response:
        services.database_delete(database=self.database(request, database))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TableListView(DatabaseLookup):
    """A database's tables (cursor pages by name); create one explicitly (or by a first write)."""

    @extend_schema(responses=io.TableOutput(many=True))
    def get(self, request: Request, database: str) -> Response:
        found = self.database(request, database)
        readable = self.allows(request, "read")

        def render(rows: list[Table]) -> list[Any]:
            return io.TableOutput(
                [t for t in rows if readable(table_resource(database, t.name))], many=True
            ).data

        return self.paginate(
            Table.objects.filter(database=found).select_related("database"), ordering="name", render=render
        )

    @extend_schema(request=io.TableInput, responses={201: io.TableOutput, 200: io.TableOutput, 503: ERROR})
    def post(self, request: Request, database: str) -> Response:
        found = self.database(request, database)
        name = validated(io.TableInput, request.data)["name"]
        self.authorize(request, table_resource(database, names.TABLE.check(name, "table")), "write")
        table, created = services.table_ensure(database=found, name=name)
        return Response(
            io.TableOutput(table).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TableDetailView(DbView):
    """A table; dropping it (with every record) needs db:manage."""

    required_scopes = {"GET": "db:read", "DELETE": MANAGE}

    def resources(self, request: Request, database: str, table: str, **kwargs: Any):
        check_table(check_database(database), table)
        return (table_resource(database, table),)

    def table(self, request: Request, database: str, name: str) -> Table:
        self.entry(request, database).table(name)  # 404 table_not_found
        found = Table.objects.select_related("database").filter(database__name=database, name=name).first()
        if found is None:  # dropped since the catalog was read: the same answer
            raise NotFound(
                f"Database {database!r} has no table {name!r}.",
                "table_not_found",
                {"database": database, "table": name},
            )
        return found

    @extend_schema(responses=io.TableOutput)
    def get(self, request: Request, database: str, table: str) -> Response:
        return Response(io.TableOutput(self.table(request, database, table)).data)

    @extend_schema(responses={204: None, 503: ERROR})
    def delete(self, request: Request, database: str, table: str) -> Response:
        services.table_drop(table=self.table(request, database, table))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RowPolicyListView(DatabaseLookup):
    """A database's row policies; adding one needs db:manage."""

    required_scopes = {"GET": "db:read", "POST": MANAGE}

    @extend_schema(responses=io.RowPolicyOutput(many=True))
    def get(self, request: Request, database: str) -> Response:
        found = self.database(request, database)
        readable = self.allows(request, "read")

        def render(rows: list[RowPolicy]) -> list[Any]:
            shown = [p for p in rows if p.table == "*" or readable(table_resource(database, p.table))]
            return io.RowPolicyOutput(shown, many=True).data

        return self.paginate(RowPolicy.objects.filter(database=found), ordering="id", render=render)

    @extend_schema(request=io.RowPolicyInput, responses={201: io.RowPolicyOutput})
    def post(self, request: Request, database: str) -> Response:
        found = self.database(request, database)
        data = validated(io.RowPolicyInput, request.data)
        policy = services.row_policy_create(database=found, **data)
        return Response(io.RowPolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class RowPolicyDetailView(DatabaseLookup):
    required_scopes = {"GET": "db:read", "DELETE": MANAGE}

    def policy(self, request: Request, database: str, policy_id: int) -> RowPolicy:
        found = self.database(request, database)
        return one_or_404(
            RowPolicy, f"No row policy {policy_id} on database {database!r}.", database=found, pk=policy_id
        )

    @extend_schema(responses=io.RowPolicyOutput)
    def get(self, request: Request, database: str, policy_id: int) -> Response:
        policy = self.policy(request, database, policy_id)
        if policy.table != "*":  # a table's policy shows its condition: for who may read the table
            self.authorize(request, table_resource(database, policy.table), "read")
        return Response(io.RowPolicyOutput(policy).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, database: str, policy_id: int) -> Response:
        services.row_policy_delete(policy=self.policy(request, database, policy_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
