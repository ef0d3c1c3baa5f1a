"""OAuth2 endpoints: django-oauth-toolkit's, with the platform's guards around them.

- ``/o/token/``: refuses a caller with too many failed client authentications (429) and
  audits failures.
- ``/o/revoke_token/``: a revoked token stops working on every node within the poll interval.
- ``/o/introspect/``: RFC 7662, answered from the same cached validation as every API call.
- ``/o/.well-known/jwks.json`` and ``/o/.well-known/oauth-authorization-server``: the keys
  that sign JWT access tokens, and the server's metadata (RFC 8414).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth import views as django_auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as oauth_views
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import Application
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidScopeError

from auth_app import lockout, tokens
from auth_app.forms import SignInForm
from auth_app.keys import issuer_for, published_keys
from auth_app.scopes import AccountDisabled, consent_scopes
from auth_app.secrets import check_client_secret
from auth_app.tokens import TokenInfo, validate_bearer
from platformsite import localstate
from platformsite.api.errors import json_error
from platformsite.ops import get_only
from platformsite.services import all_scopes


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(client id, secret) of a Basic header, decoded as django-oauth-toolkit decodes it.

    The same lenient base64 and RFC 6749 2.3.1 form-decoding, so that a failure is counted
    against the client id the token endpoint actually tried, however the caller spelled it.
    """
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:  # not base64 (binascii.Error), not UTF-8, or a non-ASCII header
        return None
    if not colon:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def _too_many_failures() -> JsonResponse:
    response = JsonResponse(
        {
            "error": "too_many_requests",
            "error_description": "Too many failed authentications; try again later.",
        },
        status=429,
    )
    response["Retry-After"] = str(lockout.WINDOW_SECONDS)
    return response


def _count_failure(request: HttpRequest, endpoint: str) -> None:
    basic = _basic_credentials(request)
    client_id = basic[0] if basic else request.POST.get("client_id", "")
    lockout.count_failure(request, subject=f"client:{client_id}", endpoint=endpoint)


def _may_be_a_guess(request: HttpRequest) -> bool:
    """Whether an ``invalid_grant`` counts towards the address's lockout: a password (a user's,
    guessable), or a code or refresh token sent by a client that proved no secret (a public one).
    A confidential client that authenticated (else the answer is ``invalid_client``) and sends a
    stale refresh token or a used code is not guessing: counted, its retries locked every client
    of its address (every service on its host) out of their tokens for five minutes."""
    basic = _basic_credentials(request)
    secret = basic[1] if basic else request.POST.get("client_secret", "")
    return request.POST.get("grant_type") == "password" or not secret


def _client_refused(response: HttpResponse) -> bool:
    return response.status_code in (400, 401) and b'"invalid_client"' in response.content


class _MethodNotAllowedInJson:
    """Another method is 405 in the API's error shape, with ``Allow`` (Django's is an empty HTML page)."""

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = json_error(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = ", ".join(self._allowed_methods())
        return response


class TokenView(_MethodNotAllowedInJson, oauth_views.TokenView):
    """The token endpoint, throttling callers that keep failing to authenticate."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if lockout.locked_out(request):
            return _too_many_failures()
        # Not super().post(): django-oauth-toolkit answers the device grant itself, before the
        # server's grants are consulted (404 device_not_found, or a 500 without device_code),
        # though the platform offers no such grant: through the server it is unsupported_grant_type.
        response = self.authorization_flow_token_response(request, *args, **kwargs)
        if _client_refused(response) or (
            response.status_code == 400
            and b'"invalid_grant"' in response.content
            and _may_be_a_guess(request)
        ):
            _count_failure(request, "token")
        return response


class RevokeTokenView(_MethodNotAllowedInJson, oauth_views.RevokeTokenView):
    """RFC 7009 revocation; a revoked token stops working on every node within the poll interval.
    Failed client authentications count towards the same lockout as the token endpoint's."""

    def post(self, request, *args, **kwargs):
        if lockout.locked_out(request):
            return _too_many_failures()
        response = super().post(request, *args, **kwargs)  # the validator notes a revocation
        if _client_refused(response):
            _count_failure(request, "revoke")
        return response


class AuthorizationView(oauth_views.AuthorizationView):
    """The authorization endpoint. A user not signed in signs in at ``/o/login/``, which takes any
    active user: the dashboards' login (``LOGIN_URL``) takes only staff, so no other user could
    ever authorize a client."""

    login_url = reverse_lazy("oauth2_provider:login")

    def redirect(self, redirect_to: str, application) -> HttpResponse:
        """Every answer sent back to the client carries RFC 9207's ``iss``, its errors before the
        consent page too (django-oauth-toolkit adds it only to the answers after the consent)."""
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
            redirect_to = _with_iss(redirect_to, issuer)
        return super().redirect(redirect_to, application)

    def validate_authorization_request(self, request: HttpRequest) -> tuple[list[str], dict]:
        """The scopes asked for, checked against the signed-in user's before the consent page (as
        the token will be): naming none asks for the client's scopes the user holds (the page
        asked for all of the client's, and allowing it answered ``invalid_scope`` to a user
        lacking one); naming one the user lacks goes back to the client with ``invalid_scope``
        at once, not after the user consented. A user whose account was disabled after signing
        in goes back with ``access_denied``."""
        scopes, credentials = super().validate_authorization_request(request)
        try:
            return consent_scopes(request.user, scopes, named=bool(request.GET.get("scope"))), credentials
        except AccountDisabled as exc:
            raise _to_client(AccessDeniedError, str(exc), credentials) from None
        except ValueError as exc:
            raise _to_client(InvalidScopeError, str(exc), credentials) from None


def _with_iss(uri: str, issuer: str) -> str:
    """``uri`` with its query's ``iss`` (one, replacing any other: RFC 9207 wants it unambiguous)."""
    parts = urlsplit(uri)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "iss"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer)])))


def _to_client(kind: type, description: str, credentials: dict) -> OAuthToolkitError:
    """An OAuth2 error of ``kind``, sent back to the client's redirect URI (with its ``state``)."""
    error = kind(description=description, state=credentials.get("state"))
    return OAuthToolkitError(error, redirect_uri=credentials.get("redirect_uri"))


class UserLoginView(django_auth_views.LoginView):
    """Sign-in for the authorization code flow: any active user (the plain authentication form)."""

    template_name = "platformsite/login.html"
    authentication_form = SignInForm
    extra_context = {"oauth_login": True}


class _ClientAuthCache:
    """Confidential clients recently authenticated, so introspection does not re-hash secrets."""

    TTL = 60.0

    def __init__(self) -> None:
        self.entries: dict[str, float] = {}
        self.epoch: object = None
        self.lock = threading.Lock()

    def cached(self, client_id: str, secret: str) -> bool:
        """Whether these credentials were verified within ``TTL`` (and nothing was revoked since)."""
        now = time.time()
        tokens._cache.poll_revocations(now)  # a rotation or disabling here or elsewhere drops entries
        epoch = tokens._cache.epoch
        if epoch != self.epoch:
            self.entries.clear()
            self.epoch = epoch
        if self.entries.get(self._key(client_id, secret), 0.0) > now:
            _client_auth_stats.hits += 1
            return True
        _client_auth_stats.misses += 1
        return False

    def verify(self, client_id: str, secret: str) -> bool:
        """Check the secret against the stored hash (slow on purpose), and remember a success."""
        if "\x00" in client_id:  # no client has one, and PostgreSQL refuses it in a query
            return False
        row = (
            Application.objects.filter(client_id=client_id, client_type=Application.CLIENT_CONFIDENTIAL)
            .values_list("client_secret", "platform_account__is_active")
            .first()
        )
        if row is None or row[1] is False or not check_client_secret(secret, row[0]):
            return False
        with self.lock:
            if len(self.entries) > 10_000:
                self.entries.clear()
            self.entries[self._key(client_id, secret)] = time.time() + self.TTL
        return True

    @staticmethod
    def _key(client_id: str, secret: str) -> str:
        return hashlib.sha256(f"{client_id}:{secret}".encode()).hexdigest()

    def reset(self) -> None:
        self.entries.clear()
        self.epoch = None


_client_auth = _ClientAuthCache()
_client_auth_stats = localstate.register_cache(
    "auth.client_auth", size=lambda: len(_client_auth.entries), reset=_client_auth.reset
)


def _introspection_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="platform", Bearer realm="platform"'
    return response


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectView(_MethodNotAllowedInJson, View):
    """RFC 7662 token introspection.

    The caller authenticates as a confidential client (HTTP Basic) or with a bearer token
    holding ``auth:read`` (or ``admin``).
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> JsonResponse:
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        raw = request.POST.get("token", "")
        if not raw:
            return _introspection_error(400, "invalid_request", "The token parameter is missing.")
        token = validate_bearer(raw) if len(raw) <= 4096 else None
        if token is None:
            return JsonResponse({"active": False})
        return JsonResponse(introspection(token))

    @staticmethod
    def _authenticate(request: HttpRequest) -> JsonResponse | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            caller = validate_bearer(value.strip())
            if caller is None:
                return _introspection_error(401, "invalid_token", "The caller's token is not valid.")
            if not caller.has_scope("auth:read"):
                return _introspection_error(403, "insufficient_scope", "Introspection needs 'auth:read'.")
            return None
        basic = _basic_credentials(request)
        if basic is not None and _client_auth.cached(*basic):
            return None  # verified within the last minute: no password hash, no lockout lookup
        if lockout.locked_out(request):
            return _too_many_failures()
        if basic is None or not _client_auth.verify(*basic):
            _count_failure(request, "introspect")
            return _introspection_error(401, "invalid_client", "Client authentication failed.")
        return None


def introspection(token: TokenInfo) -> dict:
    body = {
        "active": True,
        "scope": " ".join(sorted(token.scopes)),
        "client_id": token.client_id,
        "sub": token.username or token.client_id,
        "exp": int(token.expires),
        "token_type": "Bearer",
        "platform_subject": token.subject,
    }
    if token.user_id is not None:
        body["username"] = token.username
    return body


@get_only  # a POST was CSRF's 403 HTML page
def jwks(request: HttpRequest) -> HttpResponse:
    """The public keys that sign access tokens (current and recently retired)."""
    response = JsonResponse({"keys": published_keys()})
    response["Cache-Control"] = "public, max-age=300"
    return response


@get_only
def server_metadata(request: HttpRequest) -> HttpResponse:
    """RFC 8414 authorization server metadata."""
    base = issuer_for(host=request.get_host(), secure=request.is_secure())
    grants = ["client_credentials", "authorization_code", "refresh_token"]
    if settings.PLATFORM_ALLOW_PASSWORD_GRANT:
        grants.append("password")
    return JsonResponse(
        {
            "issuer": base,
            "authorization_response_iss_parameter_supported": True,  # RFC 9207
            "authorization_endpoint": f"{base}/authorize/",
            "token_endpoint": f"{base}/token/",
            "revocation_endpoint": f"{base}/revoke_token/",
            "introspection_endpoint": f"{base}/introspect/",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "scopes_supported": sorted(all_scopes()),
            "grant_types_supported": grants,
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "access_token_format": settings.PLATFORM_ACCESS_TOKEN_FORMAT,
            "generated_at": datetime.now(UTC).isoformat(),
        }
    )
