"""Filters of the auth lists."""

from __future__ import annotations

from auth_app.models import Account, RoleBinding, Rule
from platformsite.api.filters import FilterSet, django_filters


class AccountFilter(FilterSet):
    """``type`` (service or user) and ``is_active`` (true or false)."""

    type = django_filters.ChoiceFilter(choices=Account.Type.choices)
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Account
        fields: list[str] = []


class RuleFilter(FilterSet):
    role = django_filters.CharFilter(field_name="role__name")

    class Meta:
        model = Rule
        fields: list[str] = []


class BindingFilter(FilterSet):
    role = django_filters.CharFilter(field_name="role__name")
    account = django_filters.CharFilter(field_name="account__name")

    class Meta:
        model = RoleBinding
        fields: list[str] = []
