"""The monitor's name grammars: services and nodes as discovery names them, checks, job slugs."""

from __future__ import annotations

from typing import Any

from platformsite.api.validators import NODE, SERVICE, SLUG, Name

SERVICE_NAME = SERVICE
NODE_NAME = NODE
CHECK_NAME = Name(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}", "letters, digits, '.', '_', ':' or '-' (up to 200)")
#: A job check's slug (its name in ``/ping/<key>/<slug>``).
JOB_SLUG = SLUG
#: A service's ping key: 22 or more URL-safe characters (never the shape of a UUID).
PING_KEY = Name(r"[A-Za-z0-9_-]{16,64}", "16 to 64 letters, digits, '_' or '-'")


def check_ref_valid(ref: Any) -> bool:
    """Whether ``ref`` is 'service/node/name' (node empty for a job check)."""
    if not isinstance(ref, str) or ref.count("/") != 2:
        return False
    service, node, name = ref.split("/")
    return (
        SERVICE_NAME.matches(service) and (node == "" or NODE_NAME.matches(node)) and CHECK_NAME.matches(name)
    )
