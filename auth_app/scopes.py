"""django-oauth-toolkit scopes backend: a client may request only the scopes of its account."""

from __future__ import annotations

from django.conf import settings
from oauth2_provider.scopes import BaseScopes

from auth_app.models import Account


def account_scopes(application) -> list[str]:
    if application is None:
        return []
    row = (
        Account.objects.filter(application_id=application.pk, is_active=True)
        .values_list("scopes", flat=True)
        .first()
    )
    return row.split() if row else []


class AccountScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return settings.PLATFORM_SCOPES

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return account_scopes(application)

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return account_scopes(application)
