"""Operator screens of the db service.

Databases are registered through the API (or found in discovery); here an operator looks,
changes a database's confinement and change feed, and removes databases, tables and row
policies, each through the service functions so every process's catalog hears about it.  The
DSN is never shown: only whether one is set.
"""

from __future__ import annotations

from django.contrib import admin

from dbproxy_app import services
from dbproxy_app.models import Database, Record, RowPolicy, Table
from platformsite.admin import CountsWhatGoesWith, DeletesThroughService, PlatformAdmin


@admin.register(Database)
class DatabaseAdmin(DeletesThroughService, CountsWhatGoesWith, PlatformAdmin):
    goes_with = {Table: "database", RowPolicy: "database", Record: "table__database"}
    list_display = [
        "name",
        "backend",
        "has_dsn",
        "owner",
        "owner_only",
        "publish_changes",
        "source",
        "updated",
    ]
    list_filter = ["backend", "source"]
    search_fields = ["name", "owner"]
    fields = ["name", "backend", "has_dsn", "options", "owner", "owner_only", "publish_changes", "source"]
    readonly_fields = ["name", "backend", "has_dsn", "options", "owner", "source"]

    @admin.display(boolean=True, description="DSN set")
    def has_dsn(self, obj: Database) -> bool:
        return bool(obj.dsn_sealed)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Database, form, change) -> None:
        services.database_update(database=obj, owner_only=obj.owner_only, publish_changes=obj.publish_changes)

    def delete_one(self, request, database: Database) -> None:
        services.database_delete(database=database)


@admin.register(Table)
class TableAdmin(DeletesThroughService, CountsWhatGoesWith, PlatformAdmin):
    goes_with = {Record: "table"}
    list_display = ["name", "database", "created"]
    search_fields = ["name", "database__name"]
    list_select_related = ["database"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_one(self, request, table: Table) -> None:
        services.table_drop(table=table)


@admin.register(RowPolicy)
class RowPolicyAdmin(DeletesThroughService, PlatformAdmin):
    list_display = ["database", "table", "role", "action", "condition"]
    list_filter = ["action"]
    search_fields = ["database__name", "role", "condition"]
    list_select_related = ["database"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_one(self, request, policy: RowPolicy) -> None:
        services.row_policy_delete(policy=policy)
