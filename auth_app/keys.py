"""JWT access tokens (RFC 9068) signed with rotating RSA keys, and the JWKS that publishes them.

django-oauth-toolkit issues, stores (as a checksum), introspects and revokes every token as
usual; only the token string is a signed JWT (``ACCESS_TOKEN_GENERATOR``), so services can
verify it offline against ``/o/.well-known/jwks.json`` while the platform keeps revocation and
introspection.  Keys live in the database, encrypted with a key derived from ``SECRET_KEY``, so
every node signs with the same current key; beat rotates it every ``PLATFORM_SIGNING_KEY_DAYS``
and retired keys stay published until every token they signed has expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import transaction
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from oauthlib.oauth2.rfc6749.tokens import random_token_generator

from auth_app.models import SigningKey
from platformsite import localstate

log = logging.getLogger(__name__)
_private_keys: dict[str, rsa.RSAPrivateKey] = {}
_lock = threading.Lock()
_stats = localstate.register_cache(
    "auth.signing_keys", size=lambda: len(_private_keys), reset=_private_keys.clear
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"micro-platform signing keys|" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": _int_b64url(numbers.n),
        "e": _int_b64url(numbers.e),
    }


@transaction.atomic
def signing_key_create() -> SigningKey:
    """A new current signing key; the previous current key is retired (still published)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    SigningKey.objects.filter(retired__isnull=True).update(retired=timezone.now())
    key = SigningKey.objects.create(
        kid=kid, private_key=_fernet().encrypt(pem).decode(), public_jwk=public_jwk(private_key, kid)
    )
    with _lock:
        _private_keys[kid] = private_key
    return key


def _load_private(kid: str, encrypted: str) -> rsa.RSAPrivateKey | None:
    key = _private_keys.get(kid)
    if key is not None:
        _stats.hits += 1
        return key
    _stats.misses += 1
    try:
        pem = _fernet().decrypt(encrypted.encode())
    except InvalidToken:
        log.warning(
            "signing key cannot be decrypted (SECRET_KEY changed?); making a new one", extra={"kid": kid}
        )
        return None
    key = serialization.load_pem_private_key(pem, password=None)
    with _lock:
        _private_keys[kid] = key
    return key


def current_signing_key() -> tuple[str, rsa.RSAPrivateKey]:
    row = SigningKey.objects.filter(retired__isnull=True).values_list("kid", "private_key").first()
    if row is not None:
        key = _load_private(*row)
        if key is not None:
            return row[0], key
    created = signing_key_create()
    return created.kid, _private_keys[created.kid]


def published_keys() -> list[dict[str, str]]:
    """Public keys that may have signed an unexpired token: the current one and recent ones."""
    grace = timedelta(seconds=settings.OAUTH2_PROVIDER["ACCESS_TOKEN_EXPIRE_SECONDS"] + 3600)
    rows = SigningKey.objects.filter(retired__isnull=True) | SigningKey.objects.filter(
        retired__gte=timezone.now() - grace
    )
    return [row.public_jwk for row in rows.order_by("-created")]


def rotate_if_due() -> bool:
    row = SigningKey.objects.filter(retired__isnull=True).values_list("created", flat=True).first()
    if row is not None and row > timezone.now() - timedelta(days=settings.PLATFORM_SIGNING_KEY_DAYS):
        return False
    signing_key_create()
    return True


def issuer_for(*, host: str, secure: bool) -> str:
    """``PLATFORM_ISSUER``, or the /o/ URL of the host a request came to (if it is allowed)."""
    if settings.PLATFORM_ISSUER:
        return settings.PLATFORM_ISSUER
    allowed = settings.ALLOWED_HOSTS or ["localhost"]
    if not validate_host(split_domain_port(host)[0], allowed):
        host = next((name for name in allowed if "*" not in name and not name.startswith(".")), "localhost")
    return f"{'https' if secure else 'http'}://{host}/o"


def _request_host(meta: Any) -> str:
    """The host of the request django-oauth-toolkit handed to oauthlib (its META), as Django finds it."""
    host = meta.get("HTTP_HOST")
    if host:
        return host
    name, port = meta.get("SERVER_NAME", ""), str(meta.get("SERVER_PORT", ""))
    return name if port in {"", "80", "443"} else f"{name}:{port}"


def sign_jwt(claims: dict[str, Any]) -> str:
    kid, key = current_signing_key()
    header = {"alg": "RS256", "typ": "at+jwt", "kid": kid}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def generate_access_token(request: Any) -> str:
    """django-oauth-toolkit's ACCESS_TOKEN_GENERATOR: an RFC 9068 JWT (or an opaque string)."""
    if settings.PLATFORM_ACCESS_TOKEN_FORMAT == "opaque":  # noqa: S105 (a format name)
        return random_token_generator(request)
    now = int(time.time())
    client_id = getattr(request, "client_id", None) or request.client.client_id
    user = getattr(request, "user", None)
    username = user.get_username() if user is not None and getattr(user, "pk", None) else None
    claims = {
        "iss": issuer_for(
            host=_request_host(request.headers),
            secure=bool(request.headers.get("X_DJANGO_OAUTH_TOOLKIT_SECURE")),
        ),
        "sub": username or client_id,
        "aud": settings.PLATFORM_TOKEN_AUDIENCE,
        "client_id": client_id,
        "iat": now,
        "exp": now + int(request.expires_in),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(request.scopes or ()),
    }
    if username:
        claims["username"] = username
    return sign_jwt(claims)
