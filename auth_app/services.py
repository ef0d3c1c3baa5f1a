"""Writes of the auth service: accounts, secrets, roles, rules and bindings.

Each write records an audit entry; writes that change what a credential may do invalidate the
caches that depend on it once the transaction commits (tokens: the revocation epoch; policies:
the policy version).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, RefreshToken, revoke_access_token

from auth_app.audit import audit
from auth_app.models import Account, Role, RoleBinding, Rule
from auth_app.policy import PolicyError, parse_pattern
from auth_app.selectors import bump_policy_version
from auth_app.tokens import note_revocation, note_revoked
from platformsite.api.errors import Conflict, Denied
from platformsite.services import all_scopes

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}\Z")
GRANT_TYPES = {
    "client_credentials": Application.GRANT_CLIENT_CREDENTIALS,
    "authorization_code": Application.GRANT_AUTHORIZATION_CODE,
    "password": Application.GRANT_PASSWORD,
}


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(all_scopes()))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}"})
    return sorted(set(scopes))


def check_grantable(
    scopes: list[str], actor_scopes: frozenset[str] | None, *, doing: str = "Granting scopes you do not hold"
) -> None:
    """Only a holder of ``admin`` may hand out scopes it does not hold itself."""
    if actor_scopes is None or "admin" in actor_scopes:
        return
    beyond = sorted(set(scopes) - actor_scopes)
    if beyond:
        raise Denied(f"{doing} needs 'admin': {', '.join(beyond)}", "scope_escalation")


def check_manageable(account: Account, actor_scopes: frozenset[str] | None) -> None:
    """Only a holder of ``admin`` may manage an account holding scopes it does not hold itself:
    change, disable, enable or delete it, or learn a new secret of it."""
    check_grantable(
        account.scope_list, actor_scopes, doing="Managing an account holding scopes you do not hold"
    )


def check_not_own(account: Account, actor_account_id: int | None, *, doing: str) -> None:
    """An account may not disable or delete itself: its token would stop working at once, and
    with the last ``admin`` account gone only a staff session could undo it."""
    if actor_account_id is not None and account.pk == actor_account_id:
        raise Denied(
            f"{doing} the account your token belongs to is refused; use another account.", "own_account"
        )


def _validate_name(name: str) -> None:
    if not NAME.match(name):
        raise ValidationError({"name": "Use 1-100 lowercase letters, digits, '.', '_' or '-'."})
    if Account.objects.filter(name=name).exists():
        raise Conflict(f"An account named {name!r} exists.", code="account_exists", details={"name": name})


@transaction.atomic
def service_account_create(
    *,
    name: str,
    scopes: list[str],
    metadata: dict | None = None,
    grant_type: str = "client_credentials",
    client_type: str = "confidential",
    redirect_uris: list[str] | None = None,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
) -> tuple[Account, str | None]:
    """Create a service account (an OAuth2 client) allowed exactly ``scopes``.

    Returns the account and the raw client secret (None for public clients), which is stored
    hashed and never shown again.
    """
    _validate_name(name)
    scopes = validate_scopes(scopes)
    check_grantable(scopes, actor_scopes)
    if grant_type not in GRANT_TYPES:
        raise ValidationError({"grant_type": f"One of: {', '.join(GRANT_TYPES)}"})
    if grant_type == "password" and not settings.PLATFORM_ALLOW_PASSWORD_GRANT:
        raise ValidationError(
            {"grant_type": "The password grant is disabled (PLATFORM_ALLOW_PASSWORD_GRANT)."}
        )
    if client_type not in {"confidential", "public"}:
        raise ValidationError({"client_type": "One of: confidential, public"})
    if client_type == "public" and grant_type != "authorization_code":
        raise ValidationError({"client_type": "Public clients may only use authorization_code (with PKCE)."})
    uris = redirect_uris or []
    if grant_type == "authorization_code" and not uris:
        raise ValidationError(
            {"redirect_uris": "The authorization code grant needs at least one redirect URI."}
        )
    secret = generate_client_secret() if client_type == "confidential" else ""
    application = Application(
        name=name,
        client_type=client_type,
        authorization_grant_type=GRANT_TYPES[grant_type],
        client_secret=secret,
        hash_client_secret=True,
        redirect_uris=" ".join(uris),
        algorithm="",
    )
    try:
        application.full_clean(exclude=["client_id", "client_secret", "user"])
    except ValidationError as exc:
        raise ValidationError({"redirect_uris": exc.messages}) from exc
    application.save()
    account = Account.objects.create(
        name=name,
        type=Account.Type.SERVICE,
        application=application,
        scopes=" ".join(scopes),
        metadata=metadata or {},
    )
    audit("auth.account.created", subject=actor, account=name, type="service", scopes=scopes)
    return account, (secret or None)


@transaction.atomic
def user_account_create(
    *,
    username: str,
    scopes: list[str],
    email: str = "",
    password: str | None = None,
    metadata: dict | None = None,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
) -> Account:
    """Create a user (a Django user) and its platform account."""
    _validate_name(username)
    scopes = validate_scopes(scopes)
    check_grantable(scopes, actor_scopes)
    users = get_user_model()
    if users.objects.filter(username=username).exists():
        raise Conflict(  # a deleted user account keeps its sign-in user
            f"A sign-in user named {username!r} exists (deleting an account keeps it; the admin removes it).",
            code="user_exists",
            details={"name": username},
        )
    user = users.objects.create_user(username=username, email=email, password=password)
    account = Account.objects.create(
        name=username, type=Account.Type.USER, user=user, scopes=" ".join(scopes), metadata=metadata or {}
    )
    audit("auth.account.created", subject=actor, account=username, type="user", scopes=scopes)
    return account


def _revoke_tokens_of(account: Account) -> int:
    """Delete the account's access tokens and refresh tokens (the client's, and the user's when it
    is a user account); every node drops its cached validations at the next poll. How many
    access tokens."""
    count = _tokens_of(AccessToken, account).delete()[0]
    _tokens_of(RefreshToken, account).delete()
    transaction.on_commit(note_revocation)
    return count


def _tokens_of(model: type, account: Account) -> Any:
    """The account's tokens of ``model``: its client's, and its user's for a user account."""
    tokens = model.objects.none()
    if account.application_id:
        tokens |= model.objects.filter(application_id=account.application_id)
    if account.user_id:
        tokens |= model.objects.filter(user_id=account.user_id)
    return tokens


@transaction.atomic
def user_password_changed(*, user: Any, actor: str = "system") -> int:
    """A sign-in user's password was set, or password sign-in turned off (the admin's password
    page): the tokens issued to that user stop working on every node, audited. How many access
    tokens were revoked."""
    count = AccessToken.objects.filter(user=user).delete()[0]
    RefreshToken.objects.filter(user=user).delete()
    transaction.on_commit(note_revocation)
    audit(
        "auth.user.password_changed",
        subject=actor,
        user=user.get_username(),
        password_sign_in=user.has_usable_password(),
        tokens_revoked=count,
    )
    return count


@transaction.atomic
def access_token_revoke(*, token: AccessToken, actor: str = "system") -> None:
    """Revoke one access token with the refresh token bound to it (left behind, that would mint
    another), as ``/o/revoke_token/`` does; once committed every node forgets the token (one that
    validated it would accept it for ``PLATFORM_TOKEN_CACHE_SECONDS`` more)."""
    token_id, checksum = token.pk, token.token_checksum
    client_id = token.application.client_id if token.application_id else ""
    revoke_access_token(token)
    transaction.on_commit(lambda: note_revoked([checksum]))
    audit("auth.token.revoked", subject=actor, token=token_id, client_id=client_id)


@transaction.atomic
def account_update(
    *,
    account: Account,
    scopes: list[str] | None = None,
    metadata: dict | None = None,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
    actor_account_id: int | None = None,
) -> Account:
    """Change an account's scopes or metadata; narrowing its scopes revokes its live tokens."""
    check_manageable(account, actor_scopes)
    fields = ["updated"]
    changes: dict[str, Any] = {}
    if scopes is not None:
        scopes = validate_scopes(scopes)
        check_grantable(scopes, actor_scopes)
        dropped = set(account.scope_list) - set(scopes)
        if dropped:  # it revokes the caller's own token: the same cut-off as disabling itself
            check_not_own(account, actor_account_id, doing="Narrowing the scopes of")
        account.scopes = " ".join(scopes)
        fields.append("scopes")
        changes["scopes"] = scopes
        if dropped:
            _revoke_tokens_of(account)
    if metadata is not None:
        account.metadata = metadata
        fields.append("metadata")
        changes["metadata_keys"] = sorted(metadata)
    account.save(update_fields=fields)
    audit("auth.account.updated", subject=actor, account=account.name, **changes)
    return account


@transaction.atomic
def account_rotate_secret(
    *,
    account: Account,
    revoke_tokens: bool = False,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
) -> str:
    """Give a confidential client a new secret; the old one stops working at once.

    The caller learns the secret, so it must hold the account's scopes (or ``admin``) itself.
    """
    application = account.application
    if application is None or application.client_type != Application.CLIENT_CONFIDENTIAL:
        raise ValidationError({"account": "Only confidential clients have a secret to rotate."})
    check_manageable(account, actor_scopes)
    secret = generate_client_secret()
    application.client_secret = secret
    application.hash_client_secret = True
    application.save(update_fields=["client_secret", "hash_client_secret", "updated"])
    if revoke_tokens:
        _revoke_tokens_of(account)
    transaction.on_commit(note_revocation)  # drops cached client authentications too
    audit("auth.account.secret_rotated", subject=actor, account=account.name, revoke_tokens=revoke_tokens)
    return secret


@transaction.atomic
def account_disable(
    *,
    account: Account,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
    actor_account_id: int | None = None,
) -> Account:
    """Disable an account: it can no longer get tokens and its live tokens stop working."""
    check_manageable(account, actor_scopes)
    check_not_own(account, actor_account_id, doing="Disabling")
    account.is_active = False
    account.save(update_fields=["is_active", "updated"])
    # revoked, not only refused while it is disabled: enabling it again (after rotating a leaked
    # secret, say) must not bring its old tokens back
    _revoke_tokens_of(account)
    audit("auth.account.disabled", subject=actor, account=account.name)
    return account


@transaction.atomic
def account_enable(
    *, account: Account, actor: str = "system", actor_scopes: frozenset[str] | None = None
) -> Account:
    check_manageable(account, actor_scopes)
    account.is_active = True
    account.save(update_fields=["is_active", "updated"])
    audit("auth.account.enabled", subject=actor, account=account.name)
    return account


@transaction.atomic
def account_delete(
    *,
    account: Account,
    actor: str = "system",
    actor_scopes: frozenset[str] | None = None,
    actor_account_id: int | None = None,
) -> None:
    """Delete an account, its OAuth2 client and tokens (a user account's Django user is kept)."""
    check_manageable(account, actor_scopes)
    check_not_own(account, actor_account_id, doing="Deleting")
    name = account.name
    _revoke_tokens_of(account)
    if account.application is not None:
        account.application.delete()  # cascades to the account
    else:
        account.delete()
    transaction.on_commit(bump_policy_version)
    audit("auth.account.deleted", subject=actor, account=name)


# --- Roles, rules, bindings -------------------------------------------------------------------


def _policy_changed() -> None:
    transaction.on_commit(bump_policy_version)


def validate_rule(*, resource: str, action: str, effect: str) -> None:
    try:
        parse_pattern(resource)
    except PolicyError as exc:
        raise ValidationError({"resource": str(exc)}) from exc
    if action not in Rule.Action.values:
        raise ValidationError({"action": "One of: read, write, *"})
    if effect not in Rule.Effect.values:
        raise ValidationError({"effect": "One of: allow, deny"})


@transaction.atomic
def role_create(*, name: str, description: str = "", actor: str = "system") -> Role:
    taken = Conflict(f"A role named {name!r} exists.", code="role_exists", details={"name": name})
    if Role.objects.filter(name=name).exists():
        raise taken
    try:
        with transaction.atomic():  # a concurrent create of the same name
            role = Role.objects.create(name=name, description=description)
    except IntegrityError:
        raise taken from None
    audit("auth.role.created", subject=actor, role=name)
    return role


@transaction.atomic
def role_update(*, role: Role, description: str, actor: str = "system") -> Role:
    role.description = description
    role.save(update_fields=["description", "updated"])
    audit("auth.role.updated", subject=actor, role=role.name)
    return role


@transaction.atomic
def role_delete(*, role: Role, actor: str = "system") -> None:
    name = role.name
    role.delete()
    _policy_changed()
    audit("auth.role.deleted", subject=actor, role=name)


@transaction.atomic
def rule_create(
    *,
    role: Role,
    resource: str,
    action: str,
    effect: str = "allow",
    priority: int = 0,
    description: str = "",
    actor: str = "system",
) -> Rule:
    validate_rule(resource=resource, action=action, effect=effect)
    rule = Rule.objects.create(
        role=role, resource=resource, action=action, effect=effect, priority=priority, description=description
    )
    _policy_changed()
    audit(
        "auth.rule.created",
        subject=actor,
        role=role.name,
        rule=rule.pk,
        resource=resource,
        action=action,
        effect=effect,
        priority=priority,
    )
    return rule


@transaction.atomic
def rule_update(*, rule: Rule, actor: str = "system", **changes: Any) -> Rule:
    for name, value in changes.items():
        setattr(rule, name, value)
    validate_rule(resource=rule.resource, action=rule.action, effect=rule.effect)
    rule.save(update_fields=[*changes, "updated"])
    _policy_changed()
    audit("auth.rule.updated", subject=actor, rule=rule.pk, **changes)
    return rule


@transaction.atomic
def rule_delete(*, rule: Rule, actor: str = "system") -> None:
    rule_id = rule.pk
    rule.delete()
    _policy_changed()
    audit("auth.rule.deleted", subject=actor, rule=rule_id)


@transaction.atomic
def binding_create(*, role: Role, account: Account, actor: str = "system") -> RoleBinding:
    try:
        with transaction.atomic():
            binding = RoleBinding.objects.create(role=role, account=account)
    except IntegrityError as exc:
        raise Conflict(
            f"{account.name!r} already has role {role.name!r}.",
            code="binding_exists",
            details={"role": role.name, "account": account.name},
        ) from exc
    _policy_changed()
    audit("auth.binding.created", subject=actor, role=role.name, account=account.name)
    return binding


@transaction.atomic
def binding_delete(*, binding: RoleBinding, actor: str = "system") -> None:
    role, account = binding.role.name, binding.account.name
    binding.delete()
    _policy_changed()
    audit("auth.binding.deleted", subject=actor, role=role, account=account)
