"""Records in the platform's db service: typed records, PostgREST-style queries, bulk writes.

```python
from platform_client import PlatformSession
from platform_client.db import Table

orders = Table("orders", database="shop", session=PlatformSession())
made = orders.create({"total": 12}, metadata={"env": "prod"}, id="o-1")
again = orders.read("o-1")  # a Record: id, created, updated, version, metadata, data, bytes
orders.update("o-1", {"total": 13}, expected_version=again.version)  # 409 if it moved on
for record in orders.query({"meta.env": "eq.prod", "data->total": "gt.10"}, order="updated.desc"):
    print(record.id, record.data)
orders.bulk(create=[{"id": "o-2", "data": {}}], delete=["o-1"])  # one transaction
```

Each call retries a ``503`` (the database behind the name is down or slow) with exponential
backoff and jitter, up to ``retries`` times, never sooner than the answer's ``Retry-After`` and
never waiting more than ``max_wait`` seconds in all (past that it raises the 503 at once, its
``retry_after`` saying when to come back); other errors raise :class:`PlatformError` at once.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from platform_client.session import PlatformError, PlatformSession

API = "/api/v1/db"
UNSET: Any = object()


@dataclass(frozen=True)
class Record:
    """A stored record. A field a query's ``select`` left out is None (``id``: empty), so that a
    record read in part cannot be written back as if its metadata were empty."""

    id: str
    created: datetime | None = None
    updated: datetime | None = None
    version: int | None = None
    metadata: dict[str, str] | None = None
    data: Any = None
    bytes: bytes | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Record:
        blob, created, updated, version = (
            body.get(key) for key in ("bytes", "created", "updated", "version")
        )
        return cls(
            id=body.get("id", ""),
            created=_time(created) if created is not None else None,
            updated=_time(updated) if updated is not None else None,
            version=int(version) if version is not None else None,
            metadata=dict(body["metadata"] or {}) if "metadata" in body else None,
            data=body.get("data"),
            bytes=base64.b64decode(blob) if blob is not None else None,
        )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Page:
    records: list[Record]
    next: str | None
    count: int | None


class Client:
    """The calls shared by :class:`Table` and :class:`Databases`: JSON, and retries on 503."""

    def __init__(
        self,
        session: PlatformSession | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        max_wait: float = 5.0,
    ) -> None:
        self.session = session or PlatformSession()
        self.retries, self.backoff, self.max_wait = retries, backoff, max_wait

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        attempt, waited = 0, 0.0
        while True:
            try:
                return self.session.call(method, url, **kwargs)
            except PlatformError as exc:
                if exc.status != 503 or attempt >= self.retries:
                    raise
                pause = max(self.backoff * (2**attempt) * (0.5 + random.random()), exc.retry_after or 0.0)
                if waited + pause > self.max_wait:
                    raise
            time.sleep(pause)
            waited += pause
            attempt += 1


def _body(
    data: Any, metadata: Any, blob: Any, record_id: str | None = None, expected: int | None = None
) -> dict:
    body: dict[str, Any] = {}
    if record_id is not None:
        body["id"] = record_id
    if metadata is not UNSET:
        body["metadata"] = metadata
    if data is not UNSET:
        body["data"] = data
    if blob is not UNSET:
        body["bytes"] = base64.b64encode(blob).decode() if blob is not None else None
    if expected is not None:
        body["expected_version"] = expected
    return body


class Table(Client):
    """One table of a database: create, read, update, delete, query and bulk."""

    def __init__(
        self, name: str, *, database: str, session: PlatformSession | None = None, **options: Any
    ) -> None:
        super().__init__(session, **options)
        self.name, self.database = name, database
        self.path = f"{API}/{quote(database, safe='')}/{quote(name, safe='')}"

    def _record(self, record_id: str) -> str:
        return f"{self.path}/records/{quote(record_id, safe='')}/"

    def create(
        self, data: Any = UNSET, *, id: str | None = None, metadata: Any = UNSET, bytes: Any = UNSET
    ) -> Record:
        """A new record (``id`` given or a server uuid); 409 ``record_exists`` if the id is taken."""
        return Record.from_json(
            self.call("POST", f"{self.path}/records/", json=_body(data, metadata, bytes, id))
        )

    def read(self, record_id: str) -> Record:
        return Record.from_json(self.call("GET", self._record(record_id)))

    def get(self, record_id: str) -> Record | None:
        """The record, or None if there is none."""
        try:
            return self.read(record_id)
        except PlatformError as exc:
            if exc.status == 404 and exc.code == "record_not_found":
                return None
            raise

    def update(
        self,
        record_id: str,
        data: Any = UNSET,
        *,
        metadata: Any = UNSET,
        bytes: Any = UNSET,
        expected_version: int | None = None,
        partial: bool = False,
    ) -> Record:
        """Replace the record (``partial``: change only what is given; data merges as a JSON merge
        patch, a metadata key set to None is removed); 409 unless at ``expected_version``."""
        body = _body(data, metadata, bytes, expected=expected_version)
        return Record.from_json(self.call("PATCH" if partial else "PUT", self._record(record_id), json=body))

    def patch(self, record_id: str, data: Any = UNSET, **options: Any) -> Record:
        return self.update(record_id, data, partial=True, **options)

    def delete(self, record_id: str, *, expected_version: int | None = None) -> None:
        params = {"expected_version": expected_version} if expected_version is not None else None
        self.call("DELETE", self._record(record_id), params=params)

    def page(
        self,
        filters: Mapping[str, str] | list[tuple[str, str]] | None = None,
        *,
        order: str | None = None,
        select: str | None = None,
        limit: int | None = None,
        count: str | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of a query in PostgREST's grammar (``{"meta.env": "eq.prod"}``)."""
        params: list[tuple[str, Any]] = list(
            filters.items() if isinstance(filters, Mapping) else filters or []
        )
        for key, value in (("order", order), ("select", select), ("limit", limit), ("cursor", cursor)):
            if value is not None:
                params.append((key, value))
        headers = {"Prefer": f"count={count}"} if count else None
        body = self.call("GET", f"{self.path}/records/", params=params, headers=headers)
        return Page([Record.from_json(item) for item in body["results"]], body.get("next"), body.get("count"))

    def query(
        self, filters: Mapping[str, str] | list[tuple[str, str]] | None = None, **options: Any
    ) -> Iterator[Record]:
        """Every matching record, page after page (keyset cursors)."""
        page = self.page(filters, **options)
        while True:
            yield from page.records
            if not page.next:
                return
            body = self.call("GET", page.next)
            page = Page(
                [Record.from_json(item) for item in body["results"]], body.get("next"), body.get("count")
            )

    def bulk(
        self,
        *,
        create: list[Mapping[str, Any]] = (),
        update: list[Mapping[str, Any]] = (),
        patch: list[Mapping[str, Any]] = (),
        delete: list[str | Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """Create, replace, patch and delete in one transaction (all or nothing): ``{created:
        [Record], updated: [Record], deleted: [id]}``."""
        body = {"create": list(create), "update": list(update), "patch": list(patch), "delete": list(delete)}
        answer = self.call("POST", f"{self.path}/bulk/", json=body)
        return {
            "created": [Record.from_json(item) for item in answer["created"]],
            "updated": [Record.from_json(item) for item in answer["updated"]],
            "deleted": answer["deleted"],
        }


class Databases(Client):
    """The catalog: databases and their tables (registering a database needs ``db:manage``)."""

    def list(self) -> list[dict[str, Any]]:
        return self._all(f"{API}/databases/")

    def create(
        self,
        name: str,
        *,
        backend: str = "platform",
        dsn: str = "",
        options: Mapping[str, Any] | None = None,
        owner_only: bool = False,
        publish_changes: bool | None = None,
    ) -> dict[str, Any]:
        """``publish_changes`` None: the platform's default (on, off for an ``owner_only`` one)."""
        body = {
            "name": name,
            "backend": backend,
            "dsn": dsn,
            "options": dict(options or {}),
            "owner_only": owner_only,
        }
        if publish_changes is not None:
            body["publish_changes"] = publish_changes
        return self.call("POST", f"{API}/databases/", json=body)

    def get(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"{API}/databases/{quote(name, safe='')}/")

    def delete(self, name: str) -> None:
        self.call("DELETE", f"{API}/databases/{quote(name, safe='')}/")

    def tables(self, name: str) -> list[dict[str, Any]]:
        return self._all(f"{API}/databases/{quote(name, safe='')}/tables/")

    def create_table(self, database: str, table: str) -> dict[str, Any]:
        return self.call("POST", f"{API}/databases/{quote(database, safe='')}/tables/", json={"name": table})

    def table(self, database: str, table: str) -> Table:
        return Table(
            table,
            database=database,
            session=self.session,
            retries=self.retries,
            backoff=self.backoff,
            max_wait=self.max_wait,
        )

    def _all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = self.call("GET", path)
        while True:
            items += page["results"]
            if not page.get("next"):
                return items
            page = self.call("GET", page["next"])


__all__ = ["UNSET", "Databases", "Page", "PlatformError", "Record", "Table"]
