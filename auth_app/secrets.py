"""Client secret checks that stay strong without re-hashing on every call.

Client secrets are stored with Django's password hasher (PBKDF2, ~1M iterations: a few hundred
milliseconds a check on purpose).  A service fetching tokens or introspecting presents the same
secret again and again, so a successful check is remembered in process memory for
``REMEMBER_SECONDS``, keyed by a SHA-256 of the stored hash and the presented secret: a rotated
secret has a new stored hash, so a remembered success can never outlive a rotation, and nothing
reusable is kept in memory.  Failures are never remembered.
"""

from __future__ import annotations

import hashlib
import threading
import time

from django.contrib.auth.hashers import check_password, identify_hasher
from django.utils.crypto import constant_time_compare

from platformsite import localstate

REMEMBER_SECONDS = 300.0
MAX_REMEMBERED = 10_000

_remembered: dict[str, float] = {}
_lock = threading.Lock()
_stats = localstate.register_cache(
    "auth.client_secrets", size=lambda: len(_remembered), reset=_remembered.clear
)


def check_client_secret(provided: str, stored: str) -> bool:
    """Is ``provided`` the secret whose hash (or, for legacy rows, plain value) is ``stored``?"""
    if not provided or not stored:
        return False
    key = hashlib.sha256(f"{stored}\x00{provided}".encode()).hexdigest()
    now = time.monotonic()
    if _remembered.get(key, 0.0) > now:
        _stats.hits += 1
        return True
    _stats.misses += 1
    try:
        identify_hasher(stored)
    except ValueError:  # an unhashed legacy secret
        return constant_time_compare(provided, stored)
    if not check_password(provided, stored):
        return False
    with _lock:
        if len(_remembered) >= MAX_REMEMBERED:
            _remembered.clear()
        _remembered[key] = now + REMEMBER_SECONDS
    return True
