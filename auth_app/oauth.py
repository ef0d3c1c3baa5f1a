"""The OAuth2 request validator: django-oauth-toolkit's, refusing clients of disabled accounts.

The client's account (active flag and scopes) is read once per token request and kept on the
oauthlib request, where the scopes backend finds it too.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.db import transaction
from oauth2_provider.models import AccessToken, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2 import Server
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256

from auth_app.models import Account
from auth_app.secrets import check_client_secret
from auth_app.tokens import note_revocation, note_revoked


def client_account(request: Any, application: Any) -> tuple[bool, list[str]] | None:
    """(is_active, scopes) of the application's account, or None without one; memoized on ``request``."""
    if application is None:
        return None
    memo = getattr(request, "_platform_accounts", None)
    if memo is None:
        memo = {}
        if request is not None:
            request._platform_accounts = memo
    if application.pk not in memo:
        row = Account.objects.filter(application_id=application.pk).values_list("is_active", "scopes").first()
        memo[application.pk] = (row[0], row[1].split()) if row else None
    return memo[application.pk]


def _client_is_active(request: Any) -> bool:
    """Whether the client belongs to an active account. A client without one (added as a bare
    OAuth2 application in the admin) is refused: its tokens would name a subject no account
    owns, or, by its client id, one another account owns."""
    client = getattr(request, "client", None)
    if client is None:
        return False
    account = client_account(request, client)
    return account is not None and account[0]


class PlatformOAuth2Validator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        return check_client_secret(provided_secret, stored_secret)

    def _load_application(self, client_id, request):
        # No client id holds NUL, and PostgreSQL refuses it in a query (psycopg raises DataError,
        # which django-oauth-toolkit does not catch).
        if client_id and "\x00" in client_id:
            return None
        return super()._load_application(client_id, request)

    def validate_code(self, client_id, code, client, request, *args, **kwargs) -> bool:
        if "\x00" in code:  # no grant has one, and PostgreSQL refuses it in a query
            return False
        return super().validate_code(client_id, code, client, request, *args, **kwargs)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """django-oauth-toolkit's, and when a replayed refresh token makes it revoke the token's
        family (reuse protection: the chain is presumed stolen), every node drops its cached
        tokens, as for any other revocation: the family's access tokens are deleted, but a node
        that validated one within PLATFORM_TOKEN_CACHE_SECONDS would go on accepting it (and
        introspection answer ``active``) until its cache entry expired."""
        checksum = hashlib.sha256(refresh_token.encode()).hexdigest()
        family = (
            RefreshToken.objects.filter(token_checksum=checksum, revoked__isnull=False)
            .exclude(token_family=None)
            .values_list("token_family", flat=True)
            .first()
        )
        live = family is not None and RefreshToken.objects.filter(token_family=family, revoked=None).exists()
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if live and not RefreshToken.objects.filter(token_family=family, revoked=None).exists():
            note_revocation()
        return valid

    def _save_bearer_token(self, token, request, *args, **kwargs):
        """django-oauth-toolkit's (inside its transaction), and when a refresh replaces an access
        token (revoked with its refresh token, or given a new value), every node forgets the old
        one once that is committed: a node that validated it within PLATFORM_TOKEN_CACHE_SECONDS
        would go on accepting it until its cache entry expired. Only that token is dropped."""
        used = getattr(request, "refresh_token_instance", None)
        replaced = None
        if request.grant_type == "refresh_token" and isinstance(used, RefreshToken) and used.access_token_id:
            replaced = (
                AccessToken.objects.filter(pk=used.access_token_id)
                .values_list("token_checksum", flat=True)
                .first()
            )
        saved = super()._save_bearer_token(token, request, *args, **kwargs)
        if replaced:
            transaction.on_commit(lambda: note_revoked([replaced]))
        return saved

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        """Revoke, and make every node drop its cached tokens only when one of the client's tokens
        was revoked: an unknown token is answered 200 all the same (RFC 7009), but must not let any
        client flush every node's token cache at will."""
        checksum = hashlib.sha256(token.encode()).hexdigest()
        application_pk = getattr(request.client, "pk", None)
        known = application_pk is not None and any(
            model.objects.filter(token_checksum=checksum, application_id=application_pk).exists()
            for model in (AccessToken, RefreshToken)
        )
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        if known:
            note_revocation()

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        return super().authenticate_client(request, *args, **kwargs) and _client_is_active(request)

    def _authenticate_basic_auth(self, request) -> bool:
        # django-oauth-toolkit catches binascii.Error only: a non-ASCII Basic header (a latin-1
        # byte in the header) makes base64.b64decode raise a plain ValueError, a 500.
        try:
            return super()._authenticate_basic_auth(request)
        except ValueError:
            return False

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        return super().authenticate_client_id(client_id, request, *args, **kwargs) and _client_is_active(
            request
        )


class PlatformServer(Server):
    """oauthlib's server with only the grants the platform offers at its token endpoint, those
    its metadata lists: a grant turned off (the password grant, unless
    ``PLATFORM_ALLOW_PASSWORD_GRANT``) is ``unsupported_grant_type`` (RFC 6749 5.2) for every
    client, rather than a credentials error that third-party clients read as a wrong password.

    PKCE's ``plain`` method (also what a challenge without a method means) is refused when the
    authorization is asked for, before the user sees the consent page; django-oauth-toolkit
    refuses it only once the user has allowed (RFC 9700 2.1.1: use ``S256``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grant_types.pop("urn:ietf:params:oauth:grant-type:device_code", None)
        self.auth_grant._code_challenge_methods = {"S256": code_challenge_method_s256}

    @property
    def grant_types(self) -> dict[str, Any]:  # read per request: the server object is reused
        if settings.PLATFORM_ALLOW_PASSWORD_GRANT:
            return self._grant_types
        return {name: grant for name, grant in self._grant_types.items() if name != "password"}
