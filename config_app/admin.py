"""Operator screens of the config service: namespaces, and read-only layers and revisions.

Layers change only through the service (API, dashboard, CLI), which keeps revisions immutable,
validates them and tells the watchers; the admin shows them.
"""

from django.contrib import admin

from config_app.models import Layer, Namespace, Revision
from platformsite.admin import PlatformAdmin, ReadOnlyAdmin


@admin.register(Namespace)
class NamespaceAdmin(PlatformAdmin):
    list_display = ["name", "description", "updated"]
    search_fields = ["name", "description"]
    readonly_fields = ["name", "json_schema", "secret_paths", "created", "updated"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Layer)
class LayerAdmin(ReadOnlyAdmin):
    list_display = ["namespace", "env", "number", "updated"]
    list_filter = ["env"]
    list_select_related = ["namespace"]


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    list_display = ["namespace", "env", "number", "author", "comment", "source", "created"]
    list_filter = ["env", "source"]
    search_fields = ["namespace__name", "author", "comment"]
    list_select_related = ["namespace"]
    date_hierarchy = "created"
