"""The CLI's saved credentials: ``~/.config/platform/credentials`` (``platform login`` writes it).

A JSON object ``{"url", "client_id", "client_secret"}``, readable by its owner only (mode 0600 in
a 0700 directory).  ``$PLATFORM_CREDENTIALS`` names another file; ``$XDG_CONFIG_HOME`` moves the
default.  Command-line options win over ``PLATFORM_*`` variables, which win over the file.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

__all__ = ["credentials_path", "load", "save"]

FIELDS = ("url", "client_id", "client_secret")


def credentials_path() -> Path:
    if os.environ.get("PLATFORM_CREDENTIALS"):
        return Path(os.environ["PLATFORM_CREDENTIALS"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "platform" / "credentials"


def load(path: Path | None = None) -> dict[str, str]:
    """The saved fields ({} when there is no file); a file others can read is refused."""
    path = path or credentials_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(f"{path} is readable by others: chmod 600 {path}")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise ValueError(f"{path} is not what `platform login` writes ({exc}): log in again") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return {key: str(data[key]) for key in FIELDS if data.get(key)}


def save(url: str, client_id: str, client_secret: str, path: Path | None = None) -> Path:
    """Write the file (0600, its directory 0700), replacing any earlier one."""
    path = path or credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "client_id": client_id, "client_secret": client_secret}, handle)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path
