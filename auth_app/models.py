"""Tables of the auth service: platform accounts on top of django-oauth-toolkit's clients."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from oauth2_provider.models import Application


class Account(models.Model):
    """A platform identity: a service (an OAuth2 confidential client) or a user."""

    class Type(models.TextChoices):
        SERVICE = "service", "service"
        USER = "user", "user"

    name = models.CharField(max_length=150, unique=True, help_text="Unique name, e.g. 'payments-api'.")
    type = models.CharField(max_length=16, choices=Type.choices)
    application = models.OneToOneField(
        Application,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="platform_account",
        help_text="The OAuth2 client a service authenticates as.",
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="platform_account",
    )
    scopes = models.TextField(
        blank=True, help_text="Space-separated scopes this account may request, e.g. 'config:read'."
    )
    metadata = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="A disabled account cannot obtain tokens; its tokens stop working."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="auth_account_service_has_application",
                condition=~models.Q(type="service") | models.Q(application__isnull=False),
            ),
            models.CheckConstraint(
                name="auth_account_user_has_user",
                condition=~models.Q(type="user") | models.Q(user__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()
