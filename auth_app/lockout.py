"""Failed authentications counted per address, one count per kind.

A wrong client secret at the OAuth2 endpoints (``CLIENT``) and a wrong password at a sign-in page
(``SIGN_IN``) count against the address they came from (``client_address``: the connection's, or
the one a trusted proxy forwarded); ``PLATFORM_TOKEN_FAILURE_LIMIT`` of one kind within
``WINDOW_SECONDS`` lock that address out of that kind until the window ends.  Two counts, so a
person's mistyped passwords never lock the services of the same address out of their tokens.

Not per client id or user name: ids and names are not secret, so a lockout per name would let
anyone lock any service or operator out with a few wrong guesses a window.  What that would
guard against, guessing one secret from many addresses, does not need it: a client secret is
128 random letters and digits, stored hashed, and passwords pass Django's validators.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from auth_app.audit import audit
from platformsite import localstate
from platformsite.api.throttling import client_address
from platformsite.cache import CACHE_DOWN, shared_add

WINDOW_SECONDS = 300
CLIENT, SIGN_IN = "token", "sign-in"

#: Failures counted in this process while the shared cache cannot be reached (Redis down):
#: ``{key: (count, window ends)}``.  Tokens are issued meanwhile, and the limit holds per process.
_local: dict[str, tuple[int, float]] = {}
_local_lock = threading.Lock()
localstate.register_cache("auth.lockout_local", size=lambda: len(_local), reset=_local.clear)


def _key(request: HttpRequest, kind: str) -> str:
    return f"auth:{kind}-failures:ip:{client_address(request)}"


def _local_count(key: str, add: int = 0) -> int:
    now = time.monotonic()
    with _local_lock:
        count, ends = _local.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + WINDOW_SECONDS
        if add:
            if len(_local) >= 100_000:
                _local.clear()
            count += add
            _local[key] = (count, ends)
        return count


def locked_out(request: HttpRequest, kind: str = CLIENT) -> bool:
    """Whether the request's address has failed ``PLATFORM_TOKEN_FAILURE_LIMIT`` times in the
    window, at authentications of ``kind``."""
    key = _key(request, kind)
    try:
        count = cache.get(key) or 0
    except CACHE_DOWN:
        count = _local_count(key)
    return count >= settings.PLATFORM_TOKEN_FAILURE_LIMIT


def count_failure(request: HttpRequest, *, subject: str, endpoint: str, kind: str = CLIENT) -> None:
    """One failed authentication of ``subject`` (``client:<id>``, ``user:<name>``) at ``endpoint``."""
    key = _key(request, kind)
    try:
        shared_add(key, 1, WINDOW_SECONDS)
    except CACHE_DOWN:
        _local_count(key, add=1)
    audit("auth.authentication.failed", subject=subject[:200], endpoint=endpoint, ip=client_address(request))
