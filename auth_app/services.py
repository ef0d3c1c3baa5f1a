"""Writes of the auth service."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import Application

from auth_app.models import Account
from auth_app.tokens import note_revocation


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(settings.PLATFORM_SCOPES))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}"})
    return sorted(set(scopes))


@transaction.atomic
def service_account_create(
    *, name: str, scopes: list[str], metadata: dict | None = None
) -> tuple[Account, str]:
    """Create a service account (a confidential client-credentials client) and its secret.

    Returns the account and the raw client secret, which is stored hashed and never shown again.
    """
    scopes = validate_scopes(scopes)
    if Account.objects.filter(name=name).exists():
        raise ValidationError({"name": f"An account named {name!r} already exists."})
    secret = generate_client_secret()
    application = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    account = Account.objects.create(
        name=name,
        type=Account.Type.SERVICE,
        application=application,
        scopes=" ".join(scopes),
        metadata=metadata or {},
    )
    return account, secret


@transaction.atomic
def account_disable(*, account: Account) -> Account:
    """Disable an account: it can no longer get tokens and its live tokens stop working."""
    account.is_active = False
    account.save(update_fields=["is_active", "updated"])
    transaction.on_commit(note_revocation)
    return account
