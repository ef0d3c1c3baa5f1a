"""What the router's writes share: names, the routes revision, change pushes."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from platformsite import live
from platformsite.api import validators
from platformsite.api.errors import Invalid
from platformsite.api.validators import Name
from platformsite.cache import CACHE_DOWN
from router_app.models import Policy

log = logging.getLogger(__name__)

SERVICE = validators.SERVICE
VERSION_NAME = Name(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}", "1-100 letters, digits, '.', '_', '+' or '-'")
NODE = validators.NODE
#: Label keys travel in ``X-Micro-Label-<key>`` headers (case-insensitive, and proxies drop
#: names with '_'): lower-case letters, digits, '-' and '.'.
LABEL_KEY = Name(r"[a-z0-9][a-z0-9.-]{0,62}", "1-63 lower-case letters, digits, '-' or '.'")
#: Label values: visible ASCII without ',' (the separator of ``?labels=k:v,k:v``).
LABEL_VALUE = Name(r"[!-+\--~]{1,200}", "1-200 visible ASCII characters, no ','")
CALLER = Name(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}", "1-200 letters, digits, '.', '_', ':', '@' or '-'")
ENDPOINT = Name(r"[A-Za-z0-9/_.:{}-][A-Za-z0-9/_.:{}@-]{0,199}", "1-200 letters, digits and / _ . : { } @ -")

REVISION_PREFIX = "router:rev:"
#: A cached revision is read again from the database at least this often (a change whose
#: after-commit caching failed, Redis gone at that moment, is seen by then).
REVISION_SECONDS = 300
GROUP_PREFIX = "router.svc."
ALL_GROUP = "router.all"


def check_service(name: Any) -> str:
    return SERVICE.check(name, "service")


def group_name(service: str) -> str:
    """The channel-layer group of a service's route watchers (group names stay under 100)."""
    if len(service) <= 80:
        return GROUP_PREFIX + service
    return GROUP_PREFIX + hashlib.sha1(service.encode(), usedforsecurity=False).hexdigest()


def revision_key(service: str) -> str:
    return REVISION_PREFIX + service


def policy_for(service: str) -> Policy:
    """The service's policy row (created with Envoy's defaults on first use)."""
    policy, _ = Policy.objects.get_or_create(service=service)
    return policy


def routes_changed(service: str, why: str) -> None:
    """Bump the service's routes revision; after commit, cache it and tell watchers.

    The cached revision is dropped first, inside the transaction: while Redis is down the write is
    refused whole (``503``), so that a Redis which kept its data cannot go on naming the routes of
    before the change; readers meanwhile read the committed revision from the database."""
    policy_for(service)
    cache.delete(revision_key(service))
    Policy.objects.filter(service=service).update(revision=F("revision") + 1)
    revision = Policy.objects.filter(service=service).values_list("revision", flat=True).get()
    transaction.on_commit(lambda: _announce(service, revision, why))


def _announce(service: str, revision: int, why: str) -> None:
    try:
        cache.set(revision_key(service), revision, timeout=REVISION_SECONDS)
    except CACHE_DOWN as exc:  # stored: readers find no cached revision and read the database
        log.warning("router: the revision of %s could not be cached: %s", service, exc)
    message = {"type": "router.change", "service": service, "revision": revision, "why": why}
    for group, copy in ((group_name(service), "service"), (ALL_GROUP, "all")):
        live.notify(group, {**message, "copy": copy})


def current_revision(service: str) -> int:
    """The service's routes revision (from the cache; read from the database when missing)."""
    revision = cache.get(revision_key(service))
    if revision is None:
        revision = stored_revision(service)
        # add, not set: a change that committed and cached its revision since the read above wins
        cache.add(revision_key(service), revision, timeout=REVISION_SECONDS)
    return revision


def stored_revision(service: str) -> int:
    return Policy.objects.filter(service=service).values_list("revision", flat=True).first() or 0


def invalid_fields(errors: dict[str, Any]) -> Invalid:
    return Invalid("The request is not valid.", code="invalid", details={"fields": errors})
