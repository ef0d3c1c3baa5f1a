"""Background jobs of the auth service."""

from __future__ import annotations

from celery import shared_task
from oauth2_provider.models import clear_expired

from auth_app import keys


@shared_task(name="auth_app.tasks.purge_expired_tokens")
def purge_expired_tokens() -> None:
    """Delete expired access and refresh tokens and grants, in batches (idempotent)."""
    clear_expired()


@shared_task(name="auth_app.tasks.rotate_signing_key_if_due")
def rotate_signing_key_if_due() -> None:
    """Start signing with a new key once the current one is PLATFORM_SIGNING_KEY_DAYS old."""
    keys.rotate_if_due()
