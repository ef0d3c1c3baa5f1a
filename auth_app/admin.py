"""Operator screens of the auth service: accounts, roles, rules, bindings, signing keys, Django's
users (as accounts see them), and django-oauth-toolkit's applications and tokens (read-only here).

Secrets never appear here: client secrets are stored hashed, and rotating one (an admin
action) shows the new secret once, in the confirmation message.
"""

from __future__ import annotations

import oauth2_provider.admin  # noqa: F401  (registers its own screens first: replaced below)
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken
from rest_framework.exceptions import ValidationError as DRFValidationError

from auth_app import services
from auth_app.api.serializers import MetadataField
from auth_app.audit import audit
from auth_app.models import Account, Role, RoleBinding, Rule, SigningKey
from auth_app.selectors import bump_policy_version
from platformsite.admin import DeletesThroughService, PlatformAdmin, ReadOnlyAdmin


def _actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


class BindingInline(admin.TabularInline):
    model = RoleBinding
    extra = 0
    autocomplete_fields = ["account"]


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = ["role", "resource", "action", "effect", "priority", "description"]

    #: the API's range: a rule saved here can be written back through the API unchanged
    priority = forms.IntegerField(initial=0, min_value=-1_000_000, max_value=1_000_000)

    def clean(self) -> dict:
        data = super().clean()
        if {"resource", "action", "effect"} <= set(data):
            services.validate_rule(resource=data["resource"], action=data["action"], effect=data["effect"])
        return data


class RuleInline(admin.TabularInline):
    model = Rule
    form = RuleForm
    extra = 0
    fields = ["resource", "action", "effect", "priority", "description"]


class AccountForm(forms.ModelForm):
    """The checks of ``PATCH /api/v1/auth/accounts/<name>/``, as form errors instead of a 500."""

    class Meta:
        model = Account
        fields = ["scopes", "metadata", "is_active"]

    def clean_scopes(self) -> str:
        try:
            return " ".join(services.validate_scopes(self.cleaned_data["scopes"].split()))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["scopes"]) from None

    def clean_metadata(self) -> dict:
        """Checked by the API's own field: a JSON object the database can store."""
        metadata = self.cleaned_data["metadata"]
        try:
            return MetadataField().run_validation(metadata)
        except DRFValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, list) else [str(exc.detail)]
            raise ValidationError([f"Metadata: {message}" for message in map(str, detail)]) from None


@admin.register(Account)
class AccountAdmin(DeletesThroughService, PlatformAdmin):
    form = AccountForm
    list_display = ["name", "type", "client_id", "scopes", "is_active", "created"]
    list_filter = ["type", "is_active"]
    search_fields = ["name", "application__client_id", "user__username"]
    # The name is who the account is (``service:<name>`` in tokens and audit): no service renames it.
    readonly_fields = ["name", "type", "application", "user", "client_id", "created", "updated"]
    fields = [
        "name",
        "type",
        "client_id",
        "application",
        "user",
        "scopes",
        "metadata",
        "is_active",
        "created",
        "updated",
    ]
    actions = ["disable_accounts", "enable_accounts", "rotate_secrets"]

    @admin.display(description="client id")
    def client_id(self, account: Account) -> str:
        return account.application.client_id if account.application else "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        return super().get_queryset(request).select_related("application", "user")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created through the API, the CLI or create_service_account (secret shown once)

    def save_model(self, request, account, form, change) -> None:
        changed = set(form.changed_data)
        # The service compares with the account as stored (the form already wrote the new values
        # on ``account``): narrowed scopes revoke the live tokens, as through the API.
        stored = Account.objects.get(pk=account.pk)
        if changed & {"scopes", "metadata"}:
            services.account_update(
                account=stored,
                scopes=account.scopes.split(),
                metadata=account.metadata,
                actor=_actor(request),
            )
        if "is_active" in changed:  # the form's other field: nothing is saved but through the services
            (services.account_enable if account.is_active else services.account_disable)(
                account=stored, actor=_actor(request)
            )

    def delete_one(self, request, account) -> None:
        services.account_delete(account=account, actor=_actor(request))

    @admin.action(
        description="Disable the selected accounts (their tokens stop working)", permissions=["change"]
    )
    def disable_accounts(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            services.account_disable(account=account, actor=_actor(request))

    @admin.action(description="Enable the selected accounts", permissions=["change"])
    def enable_accounts(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset:
            services.account_enable(account=account, actor=_actor(request))

    @admin.action(description="Rotate the client secret (the new one is shown once)", permissions=["change"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        for account in queryset.filter(application__client_type="confidential"):
            secret = services.account_rotate_secret(account=account, actor=_actor(request))
            self.message_user(
                request,
                f"New secret of {account.name} ({account.application.client_id}): {secret}",
                messages.WARNING,
            )


@admin.register(Role)
class RoleAdmin(DeletesThroughService, PlatformAdmin):
    list_display = ["name", "description", "updated"]
    search_fields = ["name"]
    inlines = [RuleInline, BindingInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Role | None = None) -> list[str]:
        # as through the API: a role keeps its name (row policies and bindings name it)
        return ["name"] if obj is not None else []

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        transaction.on_commit(bump_policy_version)
        audit("auth.role.updated", subject=_actor(request), role=form.instance.name)

    def save_formset(self, request, form, formset, change) -> None:
        """The inlines' rules and bindings through the services, each audited as through the API
        (``auth.rule.created``, ``auth.binding.deleted``, ...); a binding moved to another account
        is the old one deleted and the new one created."""
        actor, role = _actor(request), form.instance
        formset.save(commit=False)
        for row in formset.deleted_objects:
            if isinstance(row, Rule):
                services.rule_delete(rule=row, actor=actor)
            else:
                services.binding_delete(binding=row, actor=actor)
        for row, changed in formset.changed_objects:
            if isinstance(row, Rule):
                services.rule_update(rule=row, actor=actor, **{name: getattr(row, name) for name in changed})
            else:
                services.binding_delete(binding=RoleBinding.objects.get(pk=row.pk), actor=actor)
                services.binding_create(role=role, account=row.account, actor=actor)
        for row in formset.new_objects:
            if isinstance(row, Rule):
                fields = ("resource", "action", "effect", "priority", "description")
                services.rule_create(role=role, actor=actor, **{name: getattr(row, name) for name in fields})
            else:
                services.binding_create(role=role, account=row.account, actor=actor)

    # Through the service: its rules stop applying at once (the policy version moves), audited.
    def delete_one(self, request, role) -> None:
        services.role_delete(role=role, actor=_actor(request))


@admin.register(Rule)
class RuleAdmin(DeletesThroughService, PlatformAdmin):
    list_display = ["resource", "action", "effect", "priority", "role"]
    list_filter = ["effect", "action", "role"]
    search_fields = ["resource", "role__name"]

    form = RuleForm

    def save_model(self, request, rule, form, change) -> None:
        super().save_model(request, rule, form, change)
        transaction.on_commit(bump_policy_version)
        audit(
            "auth.rule.updated" if change else "auth.rule.created",
            subject=_actor(request),
            rule=rule.pk,
            resource=rule.resource,
            action=rule.action,
            effect=rule.effect,
            priority=rule.priority,
        )

    def delete_one(self, request, rule) -> None:
        services.rule_delete(rule=rule, actor=_actor(request))


@admin.register(SigningKey)
class SigningKeyAdmin(PlatformAdmin):
    list_display = ["kid", "created", "retired"]
    fields = ["kid", "public_jwk", "created", "retired"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- django-oauth-toolkit's rows ----------------------------------------------------------------
# Its own screens set an application's secret, grant type and client type and delete tokens
# behind the services' backs (no audit, the old tokens live on, no node hears of it). Here they
# are read; each lists the fields to show, none of them a secret. An access token may be removed,
# revoked through the service; an application goes with its account (Accounts, above).

admin.site.unregister([Application, AccessToken, RefreshToken, Grant, IDToken])


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ["name", "client_id", "client_type", "authorization_grant_type", "user", "created"]
    list_filter = ["client_type", "authorization_grant_type"]
    search_fields = ["name", "client_id"]
    list_select_related = ["user"]
    fields = [
        "name",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "user",
        "redirect_uris",
        "skip_authorization",
        "algorithm",
        "created",
        "updated",
    ]


class IssuedAdmin(ReadOnlyAdmin):
    """What the toolkit issues to an application for a user: found by either."""

    search_fields = ["application__client_id", "application__name", "user__username"]
    list_select_related = ["application", "user"]


@admin.register(AccessToken)
class AccessTokenAdmin(DeletesThroughService, IssuedAdmin):
    deletable = True
    list_display = ["id", "application", "user", "scope", "expires"]
    fields = ["application", "user", "scope", "expires", "created", "updated"]
    show_full_result_count = False

    # Revoked as through /o/revoke_token/: its refresh token with it, every node told, audited.
    def delete_one(self, request, token: AccessToken) -> None:
        services.access_token_revoke(token=token, actor=_actor(request))


@admin.register(RefreshToken)
class RefreshTokenAdmin(IssuedAdmin):
    list_display = ["id", "application", "user", "created", "revoked"]
    fields = ["application", "user", "access_token", "created", "updated", "revoked"]
    show_full_result_count = False


@admin.register(Grant)
class GrantAdmin(IssuedAdmin):
    list_display = ["id", "application", "user", "scope", "expires"]
    fields = ["application", "user", "redirect_uri", "scope", "expires", "created"]


@admin.register(IDToken)
class IDTokenAdmin(IssuedAdmin):
    list_display = ["jti", "application", "user", "scope", "expires"]
    fields = ["jti", "application", "user", "scope", "expires", "created"]


# --- Django's users -------------------------------------------------------------------------------
# A user with a platform account is that account: ``user:<username>`` in its tokens, bindings and
# audit lines. Django's own screen renamed it (orphaning all of those) and deleted its account
# without the service (no audit, the policy version unmoved).

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DeletesThroughService, DjangoUserAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and Account.objects.filter(user=obj).exists():
            readonly.append("username")  # no service renames an account
        return readonly

    @transaction.atomic
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Django's password page; a password set (or password sign-in turned off) there is told
        to the service, which revokes the user's tokens and audits it."""
        user = self.get_object(request, unquote(id))  # None for an id no user has: Django's 404
        before = user.password if user is not None else None
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and user is not None:
            user.refresh_from_db(fields=["password"])
            if user.password != before:
                services.user_password_changed(user=user, actor=_actor(request))
        return response

    @transaction.atomic
    def delete_one(self, request, user) -> None:
        """Its account through the service first (tokens revoked, audited, policies recompiled);
        the service keeps the Django user, which goes next."""
        account = Account.objects.filter(user=user).first()
        if account is not None:
            services.account_delete(account=account, actor=_actor(request))
        user.delete()
