"""Databases found through discovery, as the original proxy found them in its registry.

A service ``db.<name>`` whose passing node carries the metadata ``driver`` (``postgresql`` or
``sqlite``) and ``dsn_ref`` makes ``<name>`` a database on the first call that names it.  The
DSN itself never travels through the registry: ``dsn_ref`` points at a config value,
``config:<namespace>/<env>#<path>`` (a secret path, sealed at rest there), read once and sealed
again in the db service's own catalog (``source`` = ``discovery``).

Off unless ``DB_DISCOVERY_LOOKUP`` is on: whoever may register ``db.*`` services in discovery
then decides which config value the proxy connects with, a trust to grant deliberately (narrow
``discovery:db.*`` with policy rules).
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import IntegrityError, transaction

from dbproxy_app import names
from dbproxy_app.models import Database

log = logging.getLogger(__name__)

REF = re.compile(
    r"config:(?P<namespace>[a-z0-9][a-z0-9_-]{0,62})/(?P<env>[a-z0-9][a-z0-9_-]{0,62})#(?P<path>[^\s#]{1,200})"
)
DRIVERS = (Database.Backend.POSTGRESQL, Database.Backend.SQLITE)


def _config_value(ref: str) -> str | None:
    from config_app import sealing
    from config_app import selectors as config
    from config_app.documents import get_at, parse_path

    match = REF.fullmatch(ref)
    if not match:
        return None
    try:
        resolved = config.resolve(match["namespace"], match["env"])
        value = get_at(sealing.reveal(resolved.data), parse_path(match["path"]), None)
    except Exception:  # an unknown namespace or path: no database
        log.warning("db: dsn_ref %s does not resolve", ref)
        return None
    return value if isinstance(value, str) and value else None


def from_discovery(name: str) -> Database | None:
    """Register ``name`` from the ``db.<name>`` service in discovery, if lookup is on and a passing
    node describes it; else None."""
    if not settings.DB_DISCOVERY_LOOKUP or not names.DATABASE.matches(name) or name in names.RESERVED:
        return None
    from discovery_app import selectors as discovery

    entry = discovery.service_entry(f"db.{name}")
    if not entry.exists:
        return None
    for version in entry.document()["versions"]:
        for node in version["nodes"]:
            metadata = node.get("metadata") or {}
            driver, ref = metadata.get("driver"), metadata.get("dsn_ref")
            if node.get("status") != "passing" or driver not in DRIVERS or not isinstance(ref, str):
                continue
            dsn = _config_value(ref)
            if dsn is None:
                continue
            return _register(name, driver, dsn)
    return None


def _register(name: str, driver: str, dsn: str) -> Database | None:
    from dbproxy_app.services.databases import check_dsn, database_create
    from platformsite.api.errors import PlatformError

    try:
        check_dsn(driver, dsn)
        with transaction.atomic():
            database = database_create(name=name, backend=driver, dsn=dsn, owner=f"discovery:db.{name}")
            Database.objects.filter(pk=database.pk).update(source="discovery")
    except (PlatformError, IntegrityError):  # a DSN the backend refuses, or registered meanwhile
        return Database.objects.filter(name=name).first()
    database.source = "discovery"
    return database
