"""The admin screen every service's rows start from.

A service's rows change through the service (its API, dashboard, CLI or background loop), which
validates each write, versions it and tells watchers, caches and the event stream; the admin
would skip all of that, so it shows them. Where an operator may remove rows, the screen sets
``deletable`` and sends the removal through the service (``delete_model``, ``delete_queryset``).

Every screen starts from :class:`PlatformAdmin` (``ReadOnlyAdmin`` does), whose JSON fields answer
what Django's could not read with a form error rather than a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import capfirst

LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONFormField(forms.JSONField):
    """Django's JSON form field, answering "Enter a valid JSON." where it raised a 500: for an
    integer longer than Python converts (4,300 digits, a ``ValueError`` it does not catch) or
    nested deeper than the parser recurses; and re-showing a value holding a lone surrogate (the
    escape ``"\\ud800"``, which a validator refused) escaped, where it wrote the bare surrogate
    into a page that cannot encode it."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except (ValueError, RecursionError):
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except (ValueError, RecursionError):
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        if isinstance(value, InvalidJSONInput) or not LONE_SURROGATE.search(text):
            return text
        return json.dumps(value, cls=self.encoder)  # ASCII, its surrogates escaped as typed


class PlatformAdmin(admin.ModelAdmin):
    formfield_overrides = {models.JSONField: {"form_class": JSONFormField}}


class ReadOnlyAdmin(PlatformAdmin):
    deletable = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)

    def response_delete(self, request: Any, obj_display: str, obj_id: Any) -> Any:
        """Back to the list the row was deleted from (its filters kept), where Django sends a
        screen without change permission to the admin's index."""
        response = super().response_delete(request, obj_display, obj_id)
        if isinstance(response, HttpResponseRedirect) and self.has_view_permission(request):
            opts = self.model._meta
            changelist = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
            filters = {"preserved_filters": self.get_preserved_filters(request), "opts": opts}
            response["Location"] = add_preserved_filters(filters, changelist)
        return response


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


class DependentsGoWithIt:
    """An admin whose rows take their dependents with them through the service, as through the
    API: the delete page lists the dependents but asks no delete permission for them."""

    def get_deleted_objects(self, objs: Any, request: Any) -> tuple[list, dict, set, list]:
        deleted, counts, _, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


class CountsWhatGoesWith:
    """An admin whose delete page names the selected rows and counts the rows that go with them,
    where Django's collects and lists each one (a database's 5,000 records made a 161 KB page).
    ``goes_with`` maps each such model to its lookup of the selected row; they go through the
    service, as through the API, and need no delete permission of their own."""

    goes_with: dict[type[models.Model], str] = {}

    def get_deleted_objects(self, objs: Any, request: Any) -> tuple[list, dict, set, list]:
        rows = list(objs)
        opts = self.model._meta
        named = [
            format_html(
                '{}: <a href="{}">{}</a>',
                capfirst(opts.verbose_name),
                reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[row.pk]),
                row,
            )
            for row in rows
        ]
        counts = {opts.verbose_name_plural: len(rows)}
        for model, lookup in self.goes_with.items():
            if count := model.objects.filter(**{f"{lookup}__in": rows}).count():
                counts[model._meta.verbose_name_plural] = count
        return named, counts, set(), []
