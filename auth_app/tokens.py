"""Bearer token validation for every API call and websocket, without a database hit when warm.

A validated token is kept in this process's memory for ``PLATFORM_TOKEN_CACHE_SECONDS`` (never
past its expiry).  Revocation reaches every process within ``PLATFORM_REVOCATION_POLL_SECONDS``:
revoking bumps a revocation epoch in the shared cache (Redis in the distributed mode), and each
process compares the epoch at most once per poll interval, dropping its cached tokens when it
changed.  A token revoked on its own (the access token a refresh replaced) is instead numbered in
the shared cache: each process drops just that token, this one at once, the others at their next
poll, and keeps the others it holds.  So a warm call costs one dictionary lookup, and at most one
shared-cache read per process per poll interval (two when tokens were revoked one by one).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from oauth2_provider.models import AccessToken

from platformsite import localstate
from platformsite.cache import CACHE_DOWN

log = logging.getLogger(__name__)

REVOCATION_EPOCH_KEY = "auth:revocation-epoch"
#: How many tokens were revoked one by one so far; ``auth:revoked:<n>`` holds the checksums of the
#: n-th such revocation, for a while longer than any process keeps a token.
REVOKED_SEQUENCE_KEY = "auth:revoked-seq"
REVOKED_KEY = "auth:revoked:{}"
#: More revocations than this since a process's last poll and it drops every cached token instead.
MAX_REVOKED_PER_POLL = 1000
MAX_CACHED_TOKENS = 50_000


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a request's bearer token grants: who is calling and with which scopes."""

    id: int
    client_id: str
    account_id: int | None
    account_name: str
    user_id: int | None
    username: str
    scopes: frozenset[str]
    expires: float

    @property
    def subject(self) -> str:
        if self.user_id is not None:
            return f"user:{self.username}"
        return f"service:{self.account_name or self.client_id}"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class _TokenCache:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[TokenInfo, float]] = {}
        self.epoch: object = None
        self.sequence: int | None = None  # the last revocation one by one seen (None: no poll yet)
        self.next_poll = 0.0
        self.lock = threading.Lock()

    def poll_revocations(self, now: float) -> None:
        if now < self.next_poll:
            return
        self.next_poll = now + settings.PLATFORM_REVOCATION_POLL_SECONDS
        try:
            held = cache.get_many([REVOCATION_EPOCH_KEY, REVOKED_SEQUENCE_KEY])
            epoch, sequence = held.get(REVOCATION_EPOCH_KEY), held.get(REVOKED_SEQUENCE_KEY, 0)
            revoked = self._revoked_since(sequence) if epoch == self.epoch else []
        except CACHE_DOWN:
            # The shared cache is down (Redis restarting): no revocation elsewhere can be heard,
            # so no cached token is trusted past this poll; each is checked in the database.
            epoch, sequence, revoked = object(), None, []
        if epoch != self.epoch or revoked is None:
            self.entries.clear()
            self.epoch = epoch
        else:
            for checksum in revoked:
                self.entries.pop(checksum, None)
        self.sequence = sequence

    def _revoked_since(self, sequence: int) -> list[str] | None:
        """The checksums of the tokens revoked one by one since the last poll; None when they
        cannot all be read (too many, expired, the counter gone with a Redis restart)."""
        if self.sequence is None or sequence == self.sequence:  # nothing cached before a first poll
            return []
        if not self.sequence < sequence <= self.sequence + MAX_REVOKED_PER_POLL:
            return None
        keys = [REVOKED_KEY.format(n) for n in range(self.sequence + 1, sequence + 1)]
        found = cache.get_many(keys)
        if len(found) != len(keys):  # expired, or numbered and not yet written
            return None
        return [checksum for checksums in found.values() for checksum in checksums]

    def put(self, checksum: str, info: TokenInfo, now: float) -> None:
        ttl = settings.PLATFORM_TOKEN_CACHE_SECONDS
        if ttl <= 0:
            return
        with self.lock:
            while len(self.entries) >= MAX_CACHED_TOKENS:
                self.entries.pop(next(iter(self.entries)))
            self.entries[checksum] = (info, min(now + ttl, info.expires))


_cache = _TokenCache()


def token_checksum(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def validate_bearer(raw: str) -> TokenInfo | None:
    """The token's grant if it is known, unexpired, unrevoked and its account is enabled."""
    return validate_checksum(token_checksum(raw))


def validate_checksum(checksum: str) -> TokenInfo | None:
    """:func:`validate_bearer` of the token whose checksum this is (a connection keeps that, not
    the token, to check again later)."""
    return _cached(checksum) or _load(checksum)


def cached_bearer(raw: str) -> TokenInfo | None:
    """The token's grant if this process validated it recently, else None (no database query).

    None also for an invalid token: the caller then validates it with :func:`validate_bearer`.
    """
    return cached_checksum(token_checksum(raw))


def cached_checksum(checksum: str) -> TokenInfo | None:
    """:func:`cached_bearer` by the token's checksum."""
    return _cached(checksum)


def _cached(checksum: str) -> TokenInfo | None:
    now = time.time()
    _cache.poll_revocations(now)
    hit = _cache.entries.get(checksum)
    if hit is not None and hit[1] > now:
        _stats.hits += 1
        return hit[0]
    _stats.misses += 1
    return None


def _load(checksum: str) -> TokenInfo | None:
    now = time.time()
    info = load_token(checksum)
    if info is None or info.expires <= now:
        _cache.entries.pop(checksum, None)
        return None
    _cache.put(checksum, info, now)
    return info


def load_token(checksum: str) -> TokenInfo | None:
    row = (
        AccessToken.objects.filter(token_checksum=checksum)
        .values_list(
            "id",
            "expires",
            "scope",
            "user_id",
            "user__username",
            "user__is_active",
            "application__client_id",
            "application__platform_account__id",
            "application__platform_account__name",
            "application__platform_account__is_active",
            "user__platform_account__id",
            "user__platform_account__is_active",
        )
        .first()
    )
    if row is None:
        return None
    (
        token_id,
        expires,
        scope,
        user_id,
        username,
        user_active,
        client_id,
        account_id,
        account_name,
        account_active,
        user_account_id,
        user_account_active,
    ) = row
    if user_id is not None and (not user_active or user_account_active is False):
        return None
    if account_id is not None and not account_active:
        return None
    return TokenInfo(
        id=token_id,
        client_id=client_id or "",
        # A user's token answers to the user's roles; a service's to its own.
        account_id=user_account_id if user_id is not None else account_id,
        account_name=account_name or "",
        user_id=user_id,
        username=username or "",
        scopes=frozenset(scope.split()),
        expires=expires.timestamp(),
    )


def note_revocation() -> None:
    """Make every process drop its cached tokens at its next poll (and this one now)."""
    cache.set(REVOCATION_EPOCH_KEY, uuid.uuid4().hex, timeout=None)
    _cache.entries.clear()
    _cache.next_poll = 0.0


def note_revoked(checksums: Iterable[str]) -> None:
    """Tokens revoked one by one (call it once the revocation is committed): this process
    forgets them now, every other at its next poll, and all keep the other tokens they hold."""
    checksums = list(checksums)
    for checksum in checksums:
        _cache.entries.pop(checksum, None)
    try:
        cache.add(REVOKED_SEQUENCE_KEY, 0, timeout=None)
        sequence = cache.incr(REVOKED_SEQUENCE_KEY)
        keep = settings.PLATFORM_TOKEN_CACHE_SECONDS + settings.PLATFORM_REVOCATION_POLL_SECONDS + 60
        cache.set(REVOKED_KEY.format(sequence), checksums, timeout=keep)
    except ValueError:  # the counter went between add and incr (evicted): drop every token
        note_revocation()
    except CACHE_DOWN:  # while it is down every process checks each token in the database
        log.warning("The shared cache is down: a token revocation could not be announced.")


def _forget_cached_tokens() -> None:
    _cache.entries.clear()
    _cache.epoch = None
    _cache.sequence = None
    _cache.next_poll = 0.0


_stats = localstate.register_cache(
    "auth.tokens", size=lambda: len(_cache.entries), reset=_forget_cached_tokens
)
