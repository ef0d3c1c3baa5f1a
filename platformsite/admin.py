"""The admin screen every service's rows start from.

A service's rows change through the service (its API, dashboard, CLI or background loop), which
validates each write, versions it and tells watchers, caches and the event stream; the admin
would skip all of that, so it shows them. Where an operator may remove rows, the screen sets
``deletable`` and sends the removal through the service (``delete_model``, ``delete_queryset``).
"""

from __future__ import annotations

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)
