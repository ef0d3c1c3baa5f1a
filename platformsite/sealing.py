"""Values encrypted at rest with a Fernet key derived from ``SECRET_KEY``, for every service.

Config's secret paths (``config_app.sealing``) and the db service's DSNs are sealed with the same
key: changing ``SECRET_KEY`` makes what was sealed unreadable.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

__all__ = ["InvalidToken", "fernet", "open_text", "seal_text"]


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"micro-platform config secrets|" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def fernet() -> Fernet:
    return _fernet(settings.SECRET_KEY)


def seal_text(value: str) -> str:
    """``value`` encrypted (a Fernet token)."""
    return fernet().encrypt(value.encode()).decode()


def open_text(token: str) -> str:
    """The text :func:`seal_text` sealed; raises ``InvalidToken`` if another key sealed it."""
    return fernet().decrypt(token.encode()).decode()
