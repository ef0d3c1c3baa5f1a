"""django-oauth-toolkit scopes backend: a client may request only the scopes of its account
(any scope when it holds ``admin``, which implies them all; without a ``scope`` parameter it gets
its account's scopes as they are).

For a user's token (authorization code flow) the scopes are further limited to those of the
user's own account.  A user without one holds no scope, unless an active staff user (who counts as
``admin`` on the dashboards too): then the client's scopes.
"""

from __future__ import annotations

from oauth2_provider.scopes import BaseScopes

from auth_app.models import Account
from auth_app.oauth import client_account
from platformsite.services import all_scopes


def user_scopes(user) -> set[str] | None:
    """The scopes a user's token may hold: its account's (none while it is disabled); ``None``
    (no narrowing: the client's) for an active staff user without an account; none for others."""
    own = Account.objects.filter(user_id=user.pk).values_list("scopes", "is_active").first()
    if own is not None:
        return set(own[0].split()) if own[1] else set()
    return None if (user.is_active and user.is_staff) else set()


class AccountDisabled(ValueError):
    """The signed-in user's account is disabled: the client is answered ``access_denied``."""


def account_disabled(user) -> bool:
    return Account.objects.filter(user_id=user.pk, is_active=False).exists()


def consent_scopes(user, asked: list[str], *, named: bool) -> list[str]:
    """The scopes to ask ``user`` to consent to, checked as the token will be: ``asked`` as the
    request named them (``named``), else the client's, narrowed to those the user holds. A
    ``ValueError`` says why there is nothing to consent to (a named scope the user lacks, or
    none of the client's held): the client is answered ``invalid_scope`` before the page;
    :class:`AccountDisabled` when the user's account is disabled (signed in before that)."""
    if user.is_authenticated and account_disabled(user):
        raise AccountDisabled("The signed-in user's account is disabled.")
    held = user_scopes(user) if user.is_authenticated else None
    if held is None:
        return asked
    if not named:
        if shared := [scope for scope in asked if scope in held]:
            return shared
        raise ValueError("The signed-in user holds none of the client's scopes.")
    if lacking := sorted(set(asked) - held):
        raise ValueError(f"The signed-in user does not hold {' '.join(lacking)}.")
    return asked


def account_scopes(application, request=None) -> list[str]:
    account = client_account(request, application)
    scopes = list(account[1]) if account is not None and account[0] else []
    user = getattr(request, "user", None)
    if scopes and user is not None and getattr(user, "pk", None):
        held = user_scopes(user)
        if held is not None:
            scopes = [scope for scope in scopes if scope in held]
    return scopes


class AccountScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return all_scopes()

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        scopes = account_scopes(application, request)
        if "admin" in scopes:  # everything: so a narrower token may be asked for (least privilege)
            return list(all_scopes())
        return scopes

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        return account_scopes(application, request)
