"""Writes of records: create, update, delete, and all three in bulk, each call one transaction.

Every write checks the caller's row policy on the record as stored and as it will be, checks
versions (``expected_version`` or ``If-Match``: 409 ``version_conflict`` when the record moved
on), and publishes ``db.record.created|updated|deleted`` events (a bulk call: ``db.record.batch``
events listing its records) through the event service's transactional path: in the same
transaction on the ``platform`` backend, right after the external transaction commits on the
others.  A failure anywhere leaves nothing written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dbproxy_app.backends import RecordExists, Row, TableRef
from dbproxy_app.catalog import Entry
from dbproxy_app.query.evaluate import matches
from dbproxy_app.records import UNSET, Caller, RecordIn, check_entries, check_size, merge_patch, rules_for
from dbproxy_app.services.databases import table_ensure
from event_app.services import event_publish_many
from platformsite.api.errors import Conflict, Denied, Invalid, NotFound

SOURCE = "/platform/db"


@dataclass
class Update:
    id: str
    record: RecordIn
    partial: bool = False
    expected_version: int | None = None


@dataclass
class Delete:
    id: str
    expected_version: int | None = None


@dataclass
class Outcome:
    created: list[Row] = field(default_factory=list)
    updated: list[Row] = field(default_factory=list)
    deleted: list[Row] = field(default_factory=list)


def _not_found(entry: Entry, table: str, record_id: str, index: int | None) -> NotFound:
    details = {"database": entry.name, "table": table, "id": record_id}
    if index is not None:
        details["index"] = index
    return NotFound(f"No record {record_id!r} in {entry.name}/{table}.", "record_not_found", details)


def _conflict(record_id: str, expected: int, current: int | None, index: int | None) -> Conflict:
    details: dict[str, Any] = {"id": record_id, "expected_version": expected, "version": current}
    if index is not None:
        details["index"] = index
    now = f"at version {current}" if current is not None else "changed meanwhile"
    return Conflict(f"Record {record_id!r} is {now}, not at version {expected}.", "version_conflict", details)


def _denied(record_id: str, index: int | None) -> Denied:
    details: dict[str, Any] = {"id": record_id}
    if index is not None:
        details["index"] = index
    return Denied(
        f"Your row policy does not allow this write to {record_id!r}.", "row_policy_denied", details
    )


def table_for_write(entry: Entry, table: str) -> TableRef:
    """The table, created on its first write."""
    pk = entry.tables.get(table)
    if pk is not None:
        return TableRef(table, pk)
    created, _ = table_ensure(database=entry.pk, name=table)
    return TableRef(table, created.pk)


def records_write(
    *,
    entry: Entry,
    table: str,
    caller: Caller,
    create: list[RecordIn] = (),
    update: list[Update] = (),
    delete: list[Delete] = (),
    bulk: bool = False,
) -> Outcome:
    """Create, update and delete records of one table in one transaction (all or nothing)."""
    total = len(create) + len(update) + len(delete)
    if total > settings.DB_MAX_BULK:
        raise Invalid(f"At most {settings.DB_MAX_BULK} records per call.", code="too_many_records")
    at = (lambda i: i) if bulk else (lambda i: None)
    now = timezone.now()
    new_rows = [
        Row(
            item.id or uuid.uuid4().hex,
            now,
            now,
            1,
            item.metadata if item.metadata is not UNSET else {},
            None if item.data is UNSET else item.data,
            None if item.bytes is UNSET else item.bytes,
        ).known_data_json(item.data_json)
        for item in create
    ]
    items = [("create", index, row.id) for index, row in enumerate(new_rows)]
    counted = {"update": 0, "patch": 0}
    for change in update:
        kind = "patch" if change.partial else "update"
        items.append((kind, counted[kind], change.id))
        counted[kind] += 1
    items += [("delete", index, gone.id) for index, gone in enumerate(delete)]
    seen: set[str] = set()
    for kind, index, record_id in items:
        if record_id in seen:
            where = {"id": record_id, "list": kind, "index": index} if bulk else {"id": record_id}
            raise Invalid(f"Record {record_id!r} appears twice.", code="duplicate_id", details=where)
        seen.add(record_id)
    rules = rules_for(entry, table, caller)
    for index, row in enumerate(new_rows):
        check_size(row, at(index))
        if rules.write is not None and not matches(rules.write, row.fields()):
            raise _denied(row.id, at(index))
    ref = table_for_write(entry, table) if new_rows else entry.table(table)
    outcome = Outcome()
    backend = entry.backend
    try:
        _apply(backend, ref, entry, table, rules, new_rows, update, delete, outcome, at, now, bulk)
    except RecordExists:
        raise _taken(entry, ref, [row.id for row in new_rows], bulk) from None
    if not backend.shares_platform_transaction:
        with transaction.atomic():
            _publish(entry, table, outcome, bulk=bulk)
    return outcome


def _apply(backend, ref, entry, table, rules, new_rows, update, delete, outcome, at, now, bulk) -> None:
    """The writes in one session: updates and deletes on the locked stored records, then the
    inserts (a taken id surfaces as the unique constraint's :class:`RecordExists`)."""
    with backend.session() as session:
        changed = [*(u.id for u in update), *(d.id for d in delete)]
        existing = session.fetch(ref, changed, lock=True) if changed else {}
        for index, change in enumerate(update):
            old = _writable(
                entry, table, existing.get(change.id), change.id, change.expected_version, rules, at(index)
            )
            new = _updated(old, change, now)
            check_entries(new, at(index))
            check_size(new, at(index))
            if rules.write is not None and not matches(rules.write, new.fields()):
                raise _denied(change.id, at(index))
            if not session.replace(ref, new, old.version):
                raise _conflict(change.id, old.version, None, at(index))
            outcome.updated.append(new)
        for index, change in enumerate(delete):
            old = _writable(
                entry, table, existing.get(change.id), change.id, change.expected_version, rules, at(index)
            )
            if not session.remove(ref, change.id, old.version):
                raise _conflict(change.id, old.version, None, at(index))
            outcome.deleted.append(old)
        if new_rows:
            session.insert(ref, new_rows)
            outcome.created = new_rows
        if backend.shares_platform_transaction:
            _publish(entry, table, outcome, bulk=bulk)


def _taken(entry: Entry, ref: TableRef, ids: list[str], bulk: bool) -> Conflict:
    """409 naming the ids of a failed create that exist (read after the rollback), and in a bulk
    call the index of the first in its ``create`` list."""
    with entry.backend.session(write=False) as session:
        found = session.fetch(ref, ids)
    taken = sorted(found)
    first = next((index for index, record_id in enumerate(ids) if record_id in found), None)
    details: dict[str, Any] = {"ids": taken[:20], "count": len(taken)}
    if bulk and first is not None:
        details.update(list="create", index=first)
    shown = ids[first] if first is not None else ids[0]
    return Conflict(f"Record {shown!r} already exists.", "record_exists", details)


def _writable(
    entry: Entry,
    table: str,
    old: Row | None,
    record_id: str,
    expected: int | None,
    rules: Any,
    index: int | None,
) -> Row:
    """The stored record a change applies to: 404 if none (or the caller's read policy hides it),
    409 if it is not at the expected version, 403 if the write policy refuses it."""
    if old is None or (rules.read is not None and not matches(rules.read, old.fields())):
        raise _not_found(entry, table, record_id, index)
    if expected is not None and old.version != expected:
        raise _conflict(record_id, expected, old.version, index)
    if rules.write is not None and not matches(rules.write, old.fields()):
        raise _denied(record_id, index)
    return old


def _updated(old: Row, change: Update, now: Any) -> Row:
    record = change.record
    if change.partial:
        metadata = dict(old.metadata)
        if record.metadata is not UNSET:
            for key, value in record.metadata.items():
                if value is None:
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
        data = old.data if record.data is UNSET else merge_patch(old.data, record.data)
        blob = old.bytes if record.bytes is UNSET else record.bytes
        if record.data is not UNSET and record.data is not None:
            blob = None
        if record.bytes is not UNSET and record.bytes is not None:
            data = None
    else:
        metadata = {} if record.metadata is UNSET else record.metadata
        data = None if record.data is UNSET else record.data
        blob = None if record.bytes is UNSET else record.bytes
        return Row(old.id, old.created, now, old.version + 1, metadata, data, blob).known_data_json(
            record.data_json
        )
    return Row(old.id, old.created, now, old.version + 1, metadata, data, blob)


def _event(kind: str, entry: Entry, table: str, row: Row) -> dict[str, Any]:
    return {
        "type": f"db.record.{kind}",
        "source": SOURCE,
        "subject": f"{entry.name}/{table}/{row.id}",
        "data": {
            "database": entry.name,
            "table": table,
            "id": row.id,
            "version": row.version,
            "metadata": row.metadata,
        },
    }


#: Most records one ``db.record.batch`` event lists, and about the most bytes of their entries.
BATCH_RECORDS = 1000
BATCH_BYTES = 192 * 1024


def _batches(entry: Entry, table: str, outcome: Outcome) -> list[dict[str, Any]]:
    """The ``db.record.batch`` events of a bulk call: its changes in order (created, updated,
    deleted), each ``{id, version, metadata}``, at most :data:`BATCH_RECORDS` (and about
    :data:`BATCH_BYTES`) an event; ``part`` and ``parts`` say where an event is in its call."""
    chunks: list[dict[str, list[dict[str, Any]]]] = []
    chunk: dict[str, list[dict[str, Any]]] = {}
    count = size = 0
    for kind, rows in (
        ("created", outcome.created),
        ("updated", outcome.updated),
        ("deleted", outcome.deleted),
    ):
        for row in rows:
            entry_size = len(row.id) + len(row.encoded()[0]) + 40
            if count and (count == BATCH_RECORDS or size + entry_size > BATCH_BYTES):
                chunks.append(chunk)
                chunk, count, size = {}, 0, 0
            chunk.setdefault(kind, []).append(
                {"id": row.id, "version": row.version, "metadata": row.metadata}
            )
            count += 1
            size += entry_size
    if count:
        chunks.append(chunk)
    return [
        {
            "type": "db.record.batch",
            "source": SOURCE,
            "subject": f"{entry.name}/{table}/",
            "data": {
                "database": entry.name,
                "table": table,
                "part": number,
                "parts": len(chunks),
                "created": chunk.get("created", []),
                "updated": chunk.get("updated", []),
                "deleted": chunk.get("deleted", []),
            },
        }
        for number, chunk in enumerate(chunks, 1)
    ]


def _publish(entry: Entry, table: str, outcome: Outcome, *, bulk: bool) -> None:
    """The call's change events: one a record (``db.record.created|updated|deleted``), or for a
    bulk call its ``db.record.batch`` events listing every record it changed."""
    if not entry.publish_changes:
        return
    if bulk:
        events = _batches(entry, table, outcome)
    else:
        events = [
            *(_event("created", entry, table, row) for row in outcome.created),
            *(_event("updated", entry, table, row) for row in outcome.updated),
            *(_event("deleted", entry, table, row) for row in outcome.deleted),
        ]
    if events:
        event_publish_many(events=events)
