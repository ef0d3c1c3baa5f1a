"""The admin screen every service's rows start from.

A service's rows change through the service (its API, dashboard, CLI or background loop), which
validates each write, versions it and tells watchers, caches and the event stream; the admin
would skip all of that, so it shows them. Where an operator may remove rows, the screen sets
``deletable`` and sends the removal through the service (``delete_model``, ``delete_queryset``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


class DeletesThroughService:
    """An admin whose deletions go through the service, one row at a time, from the change page
    and from the list's "delete selected" action alike (the action skipped ``delete_model``):
    the subclass says how in ``delete_one(request, row)``, so the service's checks, caches,
    events and audit see each one. A subclass without it is refused when it is defined."""

    delete_one: Callable[[Any, Any], None]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "delete_one", None)):
            raise TypeError(f"{cls.__name__} must say how a row is deleted: delete_one(request, row)")

    def delete_model(self, request: Any, obj: Any) -> None:
        self.delete_one(request, obj)

    def delete_queryset(self, request: Any, queryset: Any) -> None:
        for row in queryset:
            self.delete_one(request, row)
