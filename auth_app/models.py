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


class Role(models.Model):
    """A named set of policy rules, bound to accounts."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleBinding(models.Model):
    """Gives an account the rules of a role."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="bindings")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="bindings")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["role", "account"], name="auth_binding_unique")]

    def __str__(self) -> str:
        return f"{self.account.name} -> {self.role.name}"


class Rule(models.Model):
    """Allows or denies an action on resources matching a glob, e.g. ``config:payments/*``."""

    class Action(models.TextChoices):
        READ = "read", "read"
        WRITE = "write", "write"
        ANY = "*", "any"

    class Effect(models.TextChoices):
        ALLOW = "allow", "allow"
        DENY = "deny", "deny"

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="rules")
    resource = models.CharField(
        max_length=300,
        help_text="'<service>:<pattern>': '*' matches any characters, '?' one character but '/'.",
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.ALLOW)
    priority = models.IntegerField(
        default=0, help_text="The matching rule of highest priority decides; deny wins a tie."
    )
    description = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.effect} {self.action} {self.resource} (priority {self.priority})"


class SigningKey(models.Model):
    """An RSA key that signs JWT access tokens; its public part is served in the JWKS."""

    kid = models.CharField(max_length=64, unique=True)
    private_key = models.TextField(help_text="PEM, encrypted with a key derived from SECRET_KEY.")
    public_jwk = models.JSONField()
    created = models.DateTimeField(auto_now_add=True)
    retired = models.DateTimeField(
        null=True, blank=True, help_text="When it stopped signing; still published for verification."
    )

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["retired", "-created"], name="auth_key_current")]

    def __str__(self) -> str:
        return self.kid
