"""Secret values: encrypted at rest as ``{"$secret": "<Fernet token>"}`` envelopes, masked as ``***``.

The Fernet key is :mod:`platformsite.sealing`'s, derived from ``SECRET_KEY`` (like auth_app's
signing keys): changing ``SECRET_KEY`` makes stored secrets unreadable (they read as ``***``).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import InvalidToken

from config_app.documents import canonical, deep_merge, get_at, missing, parse_path, strip_nulls
from platformsite.api.errors import Invalid
from platformsite.sealing import fernet

ENVELOPE_KEY = "$secret"
MASK = "***"


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and ENVELOPE_KEY in value


def seal_value(value: Any) -> dict[str, str]:
    return {ENVELOPE_KEY: fernet().encrypt(canonical(value)).decode()}


def open_envelope(envelope: dict[str, Any]) -> Any:
    """The value, or ``"***"`` if it cannot be decrypted (``SECRET_KEY`` changed). A resolution's
    envelope may hold several layers' parts (:func:`merge_secret`): they open to their merge."""
    sealed = envelope[ENVELOPE_KEY]
    if not isinstance(sealed, list):
        return _decrypt(sealed)
    opened = [_decrypt(part) if isinstance(part, str) else part["value"] for part in sealed]
    if MASK in opened:
        return MASK
    merged = strip_nulls(opened[0])
    for value in opened[1:]:
        merged = deep_merge(merged, value)
    return merged


def as_merged(data: Any) -> Any:
    """A resolution's envelopes in the parts form :func:`merge_secret` makes, also where one layer
    alone holds the secret: they open as merged values do, without the layer's nulls (a null
    deletes, so none is in a resolved document)."""
    return _walk(data, lambda envelope: {ENVELOPE_KEY: _parts(envelope)})


def _decrypt(token: Any) -> Any:
    try:
        return json.loads(fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError, TypeError, AttributeError):
        return MASK


def merge_secret(current: Any, value: Any) -> dict[str, list] | None:
    """Layers merging at a key where either holds a secret (``documents.deep_merge``'s
    ``merge_opaque``): one envelope keeping each layer's part in order, a token or
    ``{"value": plain}``, which opens to their deep merge; the whole of it is secret. Nothing is
    encrypted again, so a resolution (and its ETag) is the same however often it is built.
    None where neither is a secret (the plain rules apply)."""
    if not (is_envelope(current) or is_envelope(value)):
        return None
    return {ENVELOPE_KEY: _parts(current) + _parts(value)}


def _parts(value: Any) -> list:
    if is_envelope(value):
        sealed = value[ENVELOPE_KEY]
        return list(sealed) if isinstance(sealed, list) else [sealed]
    return [{"value": value}]


def seal(data: dict, secret_paths: list[str], previous: dict | None, *, written: bool = True) -> dict:
    """Encrypt the values at ``secret_paths`` in place; a ``"***"`` there keeps the previous secret.

    ``written``: ``data`` is a caller's write, where a ``"***"`` with no secret stored is refused
    (400 ``no_secret_to_keep``); stored data being sealed anew (secret paths changed) is sealed as
    it is."""
    for path in secret_paths:
        segments = parse_path(path)
        if not segments:
            continue
        parent = get_at(data, segments[:-1])
        key: str | int = segments[-1]
        if isinstance(parent, list) and segments[-1].isdigit() and int(segments[-1]) < len(parent):
            key = int(segments[-1])  # a list item (servers/0)
        elif not isinstance(parent, dict) or segments[-1] not in parent:
            continue
        value = parent[key]
        if value is None or is_envelope(value):
            continue
        if value == MASK:
            kept = get_at(previous, segments) if previous is not None else None
            if is_envelope(kept):
                parent[key] = kept
                continue
        if value == MASK and written:
            _no_secret_to_keep(path)
        if isinstance(value, dict | list):  # a "***" below the path keeps what is stored there
            stored = get_at(previous, segments) if previous is not None else None
            value = _masks_kept(value, open_envelope(stored) if is_envelope(stored) else _NONE, path, written)
        parent[key] = seal_value(reveal(value))  # one envelope for the subtree (a path widened)
    return data


#: Nothing stored at a place below a secret path.
_NONE = object()


def _no_secret_to_keep(path: str) -> None:
    # "keep the stored secret" with none stored: storing "***" as the password is no answer
    raise Invalid(
        f"{path} holds no secret to keep: write its value, not {MASK!r}.",
        code="no_secret_to_keep",
        details={"path": path},
    )


def _masks_kept(value: Any, before: Any, path: str, written: bool) -> Any:
    """``value`` (what is written at or below a secret path) with each ``"***"`` in it replaced
    by the stored secret's value at the same place: a read below the path shows ``"***"``, and
    writing that back keeps the secret, as it does at the path itself (it stored the mask)."""
    if value == MASK:
        if before is not _NONE and before != MASK:
            return before
        if written:
            _no_secret_to_keep(path)
        return value
    if isinstance(value, dict):
        return {
            key: _masks_kept(
                item, before.get(key, _NONE) if isinstance(before, dict) else _NONE, f"{path}/{key}", written
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _masks_kept(
                item,
                before[index] if isinstance(before, list) and index < len(before) else _NONE,
                f"{path}/{index}",
                written,
            )
            for index, item in enumerate(value)
        ]
    return value


def covered(path: str, secret_paths: list[str]) -> bool:
    """Is ``path`` at or below one of ``secret_paths``?"""
    return any(path == p or path.startswith(p + "/") for p in secret_paths)


def open_uncovered(data: Any, secret_paths: list[str], path: str = "") -> Any:
    """``data`` with the envelopes no secret path covers any more decrypted (the paths changed):
    a value that stopped being secret reads, and is written back, as itself. One that cannot be
    decrypted (``SECRET_KEY`` changed) stays as it is."""
    if is_envelope(data):
        opened = data if covered(path, secret_paths) else open_envelope(data)
        return data if opened == MASK else opened
    if isinstance(data, dict):
        return {k: open_uncovered(v, secret_paths, f"{path}/{k}" if path else k) for k, v in data.items()}
    if isinstance(data, list):
        return [
            open_uncovered(v, secret_paths, f"{path}/{i}" if path else str(i)) for i, v in enumerate(data)
        ]
    return data


def _walk(data: Any, leaf) -> Any:
    if is_envelope(data):
        return leaf(data)
    if isinstance(data, dict):
        return {k: _walk(v, leaf) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, leaf) for v in data]
    return data


def mask(data: Any) -> Any:
    return _walk(data, lambda _: MASK)


def reveal(data: Any) -> Any:
    return _walk(data, open_envelope)


def has_envelopes(data: Any) -> bool:
    if is_envelope(data):
        return True
    if isinstance(data, dict):
        return any(has_envelopes(v) for v in data.values())
    if isinstance(data, list):
        return any(has_envelopes(v) for v in data)
    return False


__all__ = ["MASK", "has_envelopes", "mask", "missing", "reveal", "seal"]
