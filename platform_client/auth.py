"""Authentication and authorization for services: tokens, offline JWT checks, policy checks.

- ``PlatformSession`` (``platform_client.session``) fetches and refreshes the service's token.
- :class:`JWKSVerifier` verifies the platform's JWT access tokens offline against its JWKS
  (keys cached; an unknown key id refetches the set, at most every ``refetch_interval`` s).
- :func:`introspect` and :func:`check` ask the platform (RFC 7662; the policy engine).
- :class:`WSGIAuthMiddleware`, :class:`ASGIAuthMiddleware` and :func:`require` reject calls
  without a valid token or without the scopes a handler needs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

from platform_client.session import PlatformError, PlatformSession

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "ASGIAuthMiddleware",
    "AuthError",
    "JWKSVerifier",
    "WSGIAuthMiddleware",
    "check",
    "introspect",
    "require",
]


class AuthError(Exception):
    """A token that is missing, malformed, forged, expired, or lacks a scope."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": {}}}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _public_key(jwk: dict[str, str]) -> rsa.RSAPublicKey:
    # cryptography is the SDK's ``jwt`` extra: imported only to verify tokens offline.
    from cryptography.hazmat.primitives.asymmetric import rsa

    n = int.from_bytes(_b64decode(jwk["n"]), "big")
    e = int.from_bytes(_b64decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def bearer_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("not_authenticated", "A bearer token is required.")
    return token.strip()


class JWKSVerifier:
    """Verifies RS256 JWT access tokens (RFC 9068) offline with the platform's published keys."""

    def __init__(
        self,
        jwks_url: str | None = None,
        *,
        base_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = "micro-platform",
        leeway: float = 30.0,
        refetch_interval: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        if jwks_url is None:
            if base_url is None:
                raise ValueError("jwks_url or base_url is required")
            jwks_url = base_url.rstrip("/") + "/o/.well-known/jwks.json"
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self._http = http or httpx.Client(timeout=5.0)
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        response = self._http.get(self.jwks_url)
        response.raise_for_status()
        keys = {jwk["kid"]: _public_key(jwk) for jwk in response.json()["keys"] if jwk.get("kty") == "RSA"}
        with self._lock:
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _key(self, kid: str) -> rsa.RSAPublicKey:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._fetched_at >= self.refetch_interval:
            try:
                self.refresh()
            except httpx.HTTPError as exc:
                raise AuthError("jwks_unavailable", f"Cannot fetch the platform's keys: {exc}") from exc
            key = self._keys.get(kid)
        if key is None:
            raise AuthError("invalid_token", "The token was signed with an unknown key.")
        return key

    def verify(self, token: str, *, scopes: Iterable[str] = ()) -> dict[str, Any]:
        """The token's claims if its signature, expiry, issuer, audience and scopes check out."""
        try:
            head, payload, signature = token.split(".")
            header = json.loads(_b64decode(head))
            claims = json.loads(_b64decode(payload))
            raw_signature = _b64decode(signature)
        except (ValueError, TypeError) as exc:
            raise AuthError("invalid_token", "The token is not a well-formed JWT.") from exc
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise AuthError("invalid_token", "The token is not an RS256 JWT access token.")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            self._key(str(header.get("kid"))).verify(
                raw_signature, f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as exc:
            raise AuthError("invalid_token", "The token's signature does not verify.") from exc
        now = time.time()
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] + self.leeway < now:
            raise AuthError("invalid_token", "The token has expired.")
        if isinstance(claims.get("nbf"), int | float) and claims["nbf"] - self.leeway > now:
            raise AuthError("invalid_token", "The token is not valid yet.")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise AuthError("invalid_token", "The token was issued by someone else.")
        if self.audience is not None:
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.audience not in audiences:
                raise AuthError("invalid_token", "The token is meant for another audience.")
        missing = set(scopes) - set(str(claims.get("scope", "")).split())
        if missing and "admin" not in str(claims.get("scope", "")).split():
            raise AuthError(
                "insufficient_scope", f"This call needs the scope(s): {', '.join(sorted(missing))}.", 403
            )
        return claims

    def verify_header(self, authorization: str | None, *, scopes: Iterable[str] = ()) -> dict[str, Any]:
        return self.verify(bearer_token(authorization), scopes=scopes)


def introspect(session: PlatformSession, token: str) -> dict[str, Any]:
    """RFC 7662: the platform's view of a token (``{"active": false}`` once revoked)."""
    credentials = session.credentials
    response = httpx.post(
        credentials.token_url.replace("/o/token/", "/o/introspect/"),
        data={"token": token},
        auth=(credentials.client_id, credentials.client_secret),
        timeout=credentials.timeout,
    )
    if response.status_code != 200:
        raise PlatformError.from_response(response)
    return response.json()


def check(
    session: PlatformSession, resource: str, action: str, *, subject: str | None = None
) -> dict[str, Any]:
    """Ask the policy engine; ``{"allowed": bool, "reason": ..., "rule": ...}``."""
    body: dict[str, str] = {"resource": resource, "action": action}
    if subject:
        body["subject"] = subject
    return session.call("POST", "/api/v1/auth/check/", json=body)


# --- server-side helpers ------------------------------------------------------------------------


class WSGIAuthMiddleware:
    """Rejects requests without a valid token (401) or the scopes (403); claims in ``environ``."""

    def __init__(
        self,
        app: Callable,
        verifier: JWKSVerifier,
        *,
        scopes: Iterable[str] = (),
        exempt_paths: Iterable[str] = ("/healthz", "/readyz"),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.exempt = tuple(exempt_paths)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exempt:
            return self.app(environ, start_response)
        try:
            environ["platform.claims"] = self.verifier.verify_header(
                environ.get("HTTP_AUTHORIZATION"), scopes=self.scopes
            )
        except AuthError as exc:
            body = json.dumps(exc.body()).encode()
            status = "401 Unauthorized" if exc.status == 401 else "403 Forbidden"
            start_response(
                status,
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("WWW-Authenticate", f'Bearer error="{exc.code}"'),
                ],
            )
            return [body]
        return self.app(environ, start_response)


class ASGIAuthMiddleware:
    """The same for ASGI apps: claims in ``scope["platform.claims"]``; websockets close 4401/4403."""

    def __init__(
        self,
        app: Callable,
        verifier: JWKSVerifier,
        *,
        scopes: Iterable[str] = (),
        exempt_paths: Iterable[str] = ("/healthz", "/readyz"),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.scopes = tuple(scopes)
        self.exempt = tuple(exempt_paths)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            claims = self.verifier.verify_header(authorization, scopes=self.scopes)
        except AuthError as exc:
            if scope["type"] == "websocket":
                # Accepted, then closed: a close code reaches the client only over an open
                # connection (a close before the accept is an HTTP 403 handshake refusal).
                message = await receive()
                if message["type"] == "websocket.connect":
                    await send({"type": "websocket.accept"})
                    await send({"type": "websocket.close", "code": 4401 if exc.status == 401 else 4403})
                return
            body = json.dumps(exc.body()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": exc.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", f'Bearer error="{exc.code}"'.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app({**scope, "platform.claims": claims}, receive, send)


def _find_request(args: tuple, kwargs: dict) -> Any:
    for candidate in (*args, *kwargs.values()):
        if hasattr(candidate, "META") or hasattr(candidate, "headers"):
            return candidate
    try:  # Flask handlers take no request argument
        from flask import request as flask_request  # type: ignore[import-not-found]

        return flask_request
    except ImportError:
        return None


def _authorization(request: Any) -> str | None:
    if request is None:
        return None
    meta = getattr(request, "META", None)
    if isinstance(meta, dict):
        return meta.get("HTTP_AUTHORIZATION")
    return request.headers.get("authorization")


def _reject(request: Any, exc: AuthError) -> Any:
    """A response in the handler's framework, or re-raise when it is not one we know."""
    module = type(request).__module__
    if module.startswith("django."):
        from django.http import JsonResponse

        return JsonResponse(exc.body(), status=exc.status)
    if module.startswith(("starlette.", "fastapi.")):
        from starlette.responses import JSONResponse  # type: ignore[import-not-found]

        return JSONResponse(exc.body(), status_code=exc.status)
    if module.startswith(("werkzeug.", "flask.")):
        return exc.body(), exc.status
    raise exc


def _attach(request: Any, claims: dict[str, Any]) -> None:
    state = getattr(request, "state", None)
    target = state if state is not None else request
    with contextlib.suppress(AttributeError):
        target.platform_claims = claims


def require(verifier: JWKSVerifier, *scopes: str) -> Callable:
    """Decorate a Django, Flask or FastAPI/Starlette handler to need a valid token with ``scopes``.

    The claims are put on the request as ``request.platform_claims`` (``request.state`` for
    Starlette).  Rejections answer 401/403 in the platform's error shape.
    """

    def decorate(handler: Callable) -> Callable:
        def authorize(args: tuple, kwargs: dict) -> Any:
            request = _find_request(args, kwargs)
            try:
                claims = verifier.verify_header(_authorization(request), scopes=scopes)
            except AuthError as exc:
                return _reject(request, exc), True
            _attach(request, claims)
            return None, False

        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                rejection, rejected = authorize(args, kwargs)
                return rejection if rejected else await handler(*args, **kwargs)

            return async_wrapper

        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            rejection, rejected = authorize(args, kwargs)
            return rejection if rejected else handler(*args, **kwargs)

        return wrapper

    return decorate
