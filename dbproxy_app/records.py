"""What a record is on the wire, how one is checked, and who is asking (for row policies).

A record is ``{id, created, updated, version, metadata, data, bytes}``: ``metadata`` a map of
strings (queried through ``meta.<key>``), ``data`` any JSON value, ``bytes`` base64; a record
holds ``data`` or ``bytes``, not both.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from dbproxy_app import names
from dbproxy_app.backends import Row
from dbproxy_app.backends.base import encode_json
from dbproxy_app.catalog import Entry
from dbproxy_app.query.ast import Group
from dbproxy_app.query.conditions import compile_condition
from platformsite.api.errors import Invalid, TooLarge
from platformsite.jsonvalues import UNSTORABLE_CHARS, unstorable

UNSET: Any = object()
MAX_DEPTH = 64


@dataclass
class RecordIn:
    """A record as a request gives it; UNSET marks what a partial update leaves alone."""

    id: str | None = None
    metadata: Any = UNSET
    data: Any = UNSET
    bytes: Any = UNSET
    #: ``data`` as compact JSON, when the check encoded it (stored as it is).
    data_json: str | None = None


def _where(index: int | None, **details: Any) -> dict[str, Any]:
    return {**({"index": index} if index is not None else {}), **details}


def parse_record(body: Any, *, index: int | None = None, partial: bool = False) -> RecordIn:
    """A record body checked field by field; 400 naming the field (and the item of a bulk call)."""
    if not isinstance(body, dict):
        raise Invalid("A record is a JSON object.", code="invalid_record", details=_where(index))
    unknown = set(body) - {"id", "metadata", "data", "bytes", "expected_version"}
    if unknown:
        field_name = sorted(unknown)[0][:60]
        raise Invalid(
            f"Unknown field {field_name!r}.", code="invalid_record", details=_where(index, field=field_name)
        )
    record = RecordIn()
    if body.get("id") is not None:
        if not names.RECORD_ID.matches(body["id"]):
            raise Invalid(
                f"A record id is {names.RECORD_ID.hint}.",
                code="invalid_id",
                details=_where(index, id=str(body["id"])[:80]),
            )
        record.id = body["id"]
    if "metadata" in body:
        record.metadata = check_metadata(body["metadata"], index, partial=partial)
    if "data" in body:
        record.data = body["data"]
        record.data_json = _data_json(record.data, index)
    if "bytes" in body:
        record.bytes = _bytes(body["bytes"], index)
    data_given = record.data is not UNSET and record.data is not None
    bytes_given = record.bytes is not UNSET and record.bytes is not None
    if data_given and bytes_given:
        raise Invalid("A record holds data or bytes, not both.", code="invalid_record", details=_where(index))
    return record


def _bytes(value: Any, index: int | None) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("bytes is a base64 string.", code="invalid_bytes", details=_where(index))
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise Invalid("bytes is not valid base64.", code="invalid_bytes", details=_where(index)) from None


def _data_json(data: Any, index: int | None) -> str | None:
    """``data`` as the compact JSON it is stored as, once it is known storable: no NUL or lone
    surrogate in a key or string, nested at most :data:`MAX_DEPTH` deep.  The encoding answers
    for most values at once: a surrogate shows in it as itself, a NUL as its escape, and fewer
    brackets than the limit bound the depth; only a value that fails one of those (or that
    the encoder cannot reach the bottom of) is walked to say exactly why."""
    if data is None:
        return None
    try:
        text = encode_json(data)
    except (RecursionError, ValueError):
        text = None
    if (
        text is None
        or "\\u0000" in text
        or UNSTORABLE_CHARS.search(text)
        or text.count("[") + text.count("{") > MAX_DEPTH
    ):
        reason = unstorable(data, max_depth=MAX_DEPTH)
        if reason:
            raise Invalid(reason, code="invalid_data", details=_where(index))
        if text is None:
            raise Invalid(
                "data cannot be encoded as JSON: it holds a number out of range (such as 1e999).",
                code="invalid_data",
                details=_where(index),
            )
    return text


def check_metadata(value: Any, index: int | None, *, partial: bool) -> dict[str, Any]:
    """A string map (in a partial update a null value removes its key)."""
    if not isinstance(value, dict):
        raise Invalid("metadata is an object of strings.", code="invalid_metadata", details=_where(index))
    if len(value) > names.MAX_META_ENTRIES:
        raise Invalid(
            f"metadata holds at most {names.MAX_META_ENTRIES} keys.",
            code="invalid_metadata",
            details=_where(index),
        )
    for key, item in value.items():
        if not names.META_KEY.matches(key):
            raise Invalid(
                f"A metadata key is {names.META_KEY.hint}.",
                code="invalid_metadata",
                details=_where(index, key=str(key)[:80]),
            )
        if item is None and partial:
            continue
        if not isinstance(item, str):
            raise Invalid(
                f"metadata values are strings ({key!r} is not).",
                code="invalid_metadata",
                details=_where(index, key=key),
            )
        if len(item) > names.MAX_META_VALUE or UNSTORABLE_CHARS.search(item):
            raise Invalid(
                f"metadata value {key!r} is longer than {names.MAX_META_VALUE} characters, or holds NUL"
                " or a lone surrogate.",
                code="invalid_metadata",
                details=_where(index, key=key),
            )
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def check_entries(row: Row, index: int | None = None) -> None:
    """A partial update's metadata as merged into the stored keys holds no more keys than any."""
    if len(row.metadata) > names.MAX_META_ENTRIES:
        raise Invalid(
            f"metadata holds at most {names.MAX_META_ENTRIES} keys ({len(row.metadata)} once merged).",
            code="invalid_metadata",
            details=_where(index),
        )


def check_size(row: Row, index: int | None = None) -> None:
    metadata, data = row.encoded()
    size = len(metadata)
    if row.bytes is not None:
        size += len(row.bytes)
    elif data is not None:
        size += len(data) if data.isascii() else len(data.encode())
    if size > settings.DB_MAX_RECORD_BYTES:
        raise TooLarge(
            f"The record is {size} bytes; at most {settings.DB_MAX_RECORD_BYTES} are stored.",
            code="record_too_large",
            details=_where(index, size=size, limit=settings.DB_MAX_RECORD_BYTES),
        )


def _iso(value: Any, shown: dict[Any, str]) -> str:
    text = shown.get(value)
    if text is None:
        text = shown[value] = value.isoformat().replace("+00:00", "Z")
    return text


def render(
    row: Row, select: tuple[str, ...] | None = None, shown: dict[Any, str] | None = None
) -> dict[str, Any]:
    """A record as the API answers it (``select`` picks fields; ``shown`` caches the times'
    text across a list, whose records often share them)."""
    shown = {} if shown is None else shown
    full = {
        "id": row.id,
        "created": _iso(row.created, shown),
        "updated": _iso(row.updated, shown),
        "version": row.version,
        "metadata": row.metadata,
        "data": row.data,
        "bytes": base64.b64encode(row.bytes).decode() if row.bytes is not None else None,
    }
    return full if select is None else {key: full[key] for key in select}


def render_json(row: Row, shown: dict[Any, str]) -> str:
    """:func:`render` as the compact JSON the API's renderer writes, from the record's stored
    encoding (a bulk call answers thousands: no dict each, no second encoding)."""
    metadata, data = row.encoded()
    blob = "null" if row.bytes is None else '"' + base64.b64encode(row.bytes).decode() + '"'
    return (
        f'{{"id":{encode_json(row.id)},"created":"{_iso(row.created, shown)}",'
        f'"updated":"{_iso(row.updated, shown)}","version":{row.version},"metadata":{metadata},'
        f'"data":{"null" if data is None else data},"bytes":{blob}}}'
    )


@dataclass
class Caller:
    """Who is asking, as row policies see it: admin, their roles (read lazily) and token claims."""

    admin: bool
    claims: dict[str, str]
    load_roles: Callable[[], frozenset[str]] = field(repr=False)
    _roles: frozenset[str] | None = None

    @property
    def roles(self) -> frozenset[str]:
        if self._roles is None:
            self._roles = self.load_roles()
        return self._roles


@dataclass(frozen=True)
class Rules:
    """The row filters that apply to a caller on a table: None where nothing restricts."""

    read: Group | None = None
    write: Group | None = None


NO_RULES = Rules()


def rules_for(entry: Entry, table: str, caller: Caller) -> Rules:
    """The caller's row filters: for each action with policies on the table, the ``or`` of the
    conditions of the caller's roles (none of them: no row)."""
    policies = [p for p in entry.policies if p.table in ("*", table)]
    if caller.admin or not policies:
        return NO_RULES
    found: dict[str, Group | None] = {}
    for action in ("read", "write"):
        relevant = [p for p in policies if p.action in (action, "*")]
        if not relevant:
            found[action] = None
            continue
        conditions = [
            compile_condition(p.condition, caller.claims) for p in relevant if p.role in caller.roles
        ]
        found[action] = Group("or", tuple(conditions))
    return Rules(read=found["read"], write=found["write"])
