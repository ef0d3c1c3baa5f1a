"""The records API: ``/api/v1/db/<database>/<table>/records/`` (PostgREST's query grammar), one
record by id (``ETag`` = its version, ``If-Match`` honoured), and bulk writes in one transaction."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from dbproxy_app import names, selectors, services
from dbproxy_app.api import serializers as io
from dbproxy_app.api.common import DbView, caller, check_database, check_table, table_resource
from dbproxy_app.backends.base import encode_json
from dbproxy_app.catalog import Entry
from dbproxy_app.pause import collector_paused
from dbproxy_app.query.grammar import bad, given_once, parse_query, parse_select
from dbproxy_app.records import parse_record, render, render_json, rules_for
from platformsite.api.errors import Invalid, NotFound
from platformsite.api.schema import ERROR

#: A strong tag holding a version: a weak one never matches (RFC 9110 compares If-Match strongly).
_IF_MATCH = re.compile(r'\s*"([0-9]{1,18})"\s*')
COUNTS = ("exact", "planned", "estimated")
UNAVAILABLE = {503: ERROR}


def etag(version: int) -> str:
    return f'"{version}"'


def is_version(value: Any) -> bool:
    """A record version a write may expect: a whole number from 1 that a BIGINT holds."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**63


def expected_version(request: Request, body: Any = None) -> int | None:
    """The version a write expects: ``If-Match`` or the body's ``expected_version`` (400 if they differ)."""
    from_header = None
    raw = request.headers.get("If-Match")
    if raw is not None and raw.strip() != "*":
        match = _IF_MATCH.fullmatch(raw)
        if not match:
            raise Invalid(
                'If-Match holds one record version as a strong tag ("3"), or *.',
                code="invalid_if_match",
                details={"if_match": raw[:40]},
            )
        from_header = int(match.group(1))
    from_body = body.get("expected_version") if isinstance(body, dict) else None
    if from_body is not None and not is_version(from_body):
        raise Invalid("expected_version is a positive integer.", code="invalid_expected_version")
    if from_header is not None and from_body is not None and from_header != from_body:
        raise Invalid("If-Match and expected_version differ.", code="invalid_expected_version")
    return from_header if from_header is not None else from_body


def prefer_count(request: Request) -> str | None:
    """``Prefer: count=exact|planned|estimated`` (other preferences are ignored, as PostgREST does)."""
    for item in request.headers.get("Prefer", "").split(","):
        key, _, value = item.strip().partition("=")
        if key == "count":
            if value not in COUNTS:
                raise Invalid(
                    f"count is one of {', '.join(COUNTS)}.",
                    code="invalid_prefer",
                    details={"count": value[:40]},
                )
            return value
    return None


class RecordsBase(DbView):
    def resources(self, request: Request, database: str, table: str, **kwargs: Any):
        check_table(check_database(database), table)
        return (table_resource(database, table),)


QUERY_PARAMETERS = [
    OpenApiParameter(
        "select", str, description="Fields to answer: id,created,updated,version,metadata,data,bytes."
    ),
    OpenApiParameter(
        "order",
        str,
        description="created|updated|id|version|meta.<key>|data-><path>, .asc or .desc, then "
        ".nullsfirst or .nullslast (default updated.desc).",
    ),
    OpenApiParameter("limit", int, description=f"Page size (default {settings.DB_DEFAULT_LIMIT}, capped)."),
    OpenApiParameter("cursor", str, description="The keyset cursor of the next page (from next)."),
    OpenApiParameter("or", str, description="A logic tree: (meta.env.eq.prod,version.gt.3)."),
    OpenApiParameter("and", str, description="A logic tree: (created.gte.2024-01-01,meta.k.neq.v)."),
    OpenApiParameter(
        "Prefer", str, location=OpenApiParameter.HEADER, description="count=exact|planned|estimated."
    ),
]


class RecordListView(RecordsBase):
    """Query records with PostgREST's grammar (``?meta.env=eq.prod&order=updated.desc``); create one."""

    pagination_class = None

    @extend_schema(
        operation_id="api_v1_db_records_query",
        parameters=QUERY_PARAMETERS,
        responses={200: io.RecordPage, **UNAVAILABLE},
    )
    def get(self, request: Request, database: str, table: str) -> Response:
        entry = self.entry(request, database)
        refuse_range(request)
        query = parse_query(
            request.query_params.lists(),
            default_limit=settings.DB_DEFAULT_LIMIT,
            max_limit=settings.DB_MAX_LIMIT,
        )
        count = prefer_count(request)
        page = selectors.records_query(entry, table, query, rules_for(entry, table, caller(request)), count)
        next_url = None
        if page.next_cursor:
            params = request.query_params.copy()
            params["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(request.path) + "?" + params.urlencode()
        shown: dict[Any, str] = {}
        body = {
            "results": [render(row, query.select, shown) for row in page.rows],
            "next": next_url,
            "count": page.total,
        }
        response = Response(body)
        shown = f"0-{len(page.rows) - 1}" if page.rows and "cursor" not in request.query_params else "*"
        response["Content-Range"] = f"{shown}/{page.total if page.total is not None else '*'}"
        if count:
            response["Preference-Applied"] = f"count={count}"
        return response

    @extend_schema(request=io.RecordInput, responses={201: io.RecordOutput, 409: ERROR, **UNAVAILABLE})
    def post(self, request: Request, database: str, table: str) -> Response:
        entry = self.entry(request, database)
        record = parse_record(request.data)
        if isinstance(request.data, dict) and request.data.get("expected_version") is not None:
            raise Invalid("A new record has no version to expect.", code="invalid_expected_version")
        outcome = services.records_write(entry=entry, table=table, caller=caller(request), create=[record])
        row = outcome.created[0]
        response = Response(render(row), status=status.HTTP_201_CREATED)
        response["ETag"] = etag(row.version)
        response["Location"] = f"{request.path}{row.id}/"
        return response


def only_parameters(request: Request, allowed: tuple[str, ...], why: str) -> None:
    """400 ``invalid_query`` for a query parameter not ``allowed``: refused, never skipped, since a
    filter or a misspelt guard added to a call by id (``?meta.env=eq.prod``, ``?expected_versoin=``)
    would otherwise read or write the record whatever it holds."""
    for name in request.query_params:
        if name not in allowed:
            raise bad(name, request.query_params.get(name, ""), why)


def _select(request: Request) -> tuple[str, ...] | None:
    """A read by id's ``select`` (its only parameter)."""
    only_parameters(request, ("select",), "a read by id takes only select")
    given = request.query_params.getlist("select")
    given_once("select", given)
    return parse_select(given[0]) if given and given[0] else None


def refuse_range(request: Request) -> None:
    """PostgREST pages with a ``Range`` header; here pages follow keyset cursors. Ignoring it would
    answer a client paging by ``Range: 10-19`` its first page again and again."""
    if "HTTP_RANGE" in request.META:
        raise bad("Range", request.META["HTTP_RANGE"], "pages follow cursors: use limit and the next link")


class RecordDetailView(RecordsBase):
    """One record: read, replace (PUT), change part of it (PATCH: metadata keys, JSON merge patch on
    data), delete; ``If-Match`` or ``expected_version`` make a write conditional (409 otherwise)."""

    def record_id(self, entry: Entry, table: str, record_id: str) -> str:
        if not names.RECORD_ID.matches(record_id):
            raise NotFound(
                f"No record {record_id[:60]!r} in {entry.name}/{table}.",
                "record_not_found",
                {"database": entry.name, "table": table, "id": record_id[:60]},
            )
        return record_id

    def answer(self, row: Any, select: tuple[str, ...] | None = None) -> Response:
        response = Response(render(row, select))
        response["ETag"] = etag(row.version)
        return response

    @extend_schema(
        parameters=[OpenApiParameter("select", str, description="Fields to answer.")],
        responses={200: io.RecordOutput, **UNAVAILABLE},
    )
    def get(self, request: Request, database: str, table: str, record_id: str) -> Response:
        entry = self.entry(request, database)
        record_id = self.record_id(entry, table, record_id)
        refuse_range(request)
        select = _select(request)
        row = selectors.record_get(entry, table, record_id, rules_for(entry, table, caller(request)))
        return self.answer(row, select)

    def _write(
        self, request: Request, database: str, table: str, record_id: str, *, partial: bool
    ) -> Response:
        entry = self.entry(request, database)
        record_id = self.record_id(entry, table, record_id)
        only_parameters(request, (), "a write takes expected_version in its body or If-Match")
        record = parse_record(request.data, partial=partial)
        if record.id is not None and record.id != record_id:
            raise Invalid(
                "The body's id differs from the URL's.", code="invalid_id", details={"id": record.id}
            )
        change = services.Update(record_id, record, partial, expected_version(request, request.data))
        outcome = services.records_write(entry=entry, table=table, caller=caller(request), update=[change])
        return self.answer(outcome.updated[0])

    @extend_schema(request=io.RecordInput, responses={200: io.RecordOutput, 409: ERROR, **UNAVAILABLE})
    def put(self, request: Request, database: str, table: str, record_id: str) -> Response:
        return self._write(request, database, table, record_id, partial=False)

    @extend_schema(request=io.RecordInput, responses={200: io.RecordOutput, 409: ERROR, **UNAVAILABLE})
    def patch(self, request: Request, database: str, table: str, record_id: str) -> Response:
        return self._write(request, database, table, record_id, partial=True)

    @extend_schema(
        parameters=[OpenApiParameter("expected_version", int, description="409 unless the record is at it.")],
        responses={204: None, 409: ERROR, **UNAVAILABLE},
    )
    def delete(self, request: Request, database: str, table: str, record_id: str) -> Response:
        entry = self.entry(request, database)
        record_id = self.record_id(entry, table, record_id)
        only_parameters(request, ("expected_version",), "a delete takes only expected_version")
        # the guard may come in the body too: read, never skipped
        given = request.data or None
        if given is not None and (not isinstance(given, dict) or set(given) - {"expected_version"}):
            raise Invalid("A delete's body is {expected_version} or nothing.", code="invalid_record")
        raw = request.query_params.get("expected_version")
        body = given
        if raw is not None:
            if not re.fullmatch(r"[0-9]{1,18}", raw):
                raise Invalid("expected_version is a positive integer.", code="invalid_expected_version")
            if given is not None and given.get("expected_version") != int(raw):
                raise Invalid(
                    "expected_version differs in the query and the body.", code="invalid_expected_version"
                )
            body = {"expected_version": int(raw)}
        change = services.Delete(record_id, expected_version(request, body))
        services.records_write(entry=entry, table=table, caller=caller(request), delete=[change])
        return Response(status=status.HTTP_204_NO_CONTENT)


class BulkView(RecordsBase):
    """Create, replace, patch and delete many records of a table in one transaction: all or nothing.
    Errors name the item (``details.index``) of the list it is in.  The cyclic garbage collector
    is paused while a call reads, writes and renders its records (:mod:`dbproxy_app.pause`)."""

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with collector_paused():
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response

    @extend_schema(request=io.BulkInput, responses={200: io.BulkOutput, 409: ERROR, **UNAVAILABLE})
    def post(self, request: Request, database: str, table: str) -> Response:
        entry = self.entry(request, database)
        body = request.data
        if not isinstance(body, dict):
            raise Invalid("A bulk body is {create, update, patch, delete}, each a list.", code="invalid_bulk")
        unknown = sorted(str(key)[:100] for key in body if key not in ("create", "update", "patch", "delete"))
        if unknown:
            raise Invalid(
                f"A bulk body is {{create, update, patch, delete}}: {unknown[0]!r} is none of them.",
                code="invalid_bulk",
                details={"field": unknown[0]},
            )
        # absent or null is an empty list; anything else that is not a list ({}, "", 0) is refused
        lists = {
            key: [] if body.get(key) is None else body[key] for key in ("create", "update", "patch", "delete")
        }
        for key, items in lists.items():
            if not isinstance(items, list):
                raise Invalid(f"{key} is a list.", code="invalid_bulk", details={"field": key})
        create = [parse_record(item, index=i) for i, item in enumerate(lists["create"])]
        updates = []
        for key in ("update", "patch"):
            for index, item in enumerate(lists[key]):
                record = parse_record(item, index=index, partial=key == "patch")
                if record.id is None:
                    raise Invalid(
                        f"Each {key} item needs its id.", code="invalid_id", details={"index": index}
                    )
                version = item.get("expected_version")
                if version is not None and not is_version(version):
                    raise Invalid(
                        "expected_version is a positive integer.",
                        code="invalid_expected_version",
                        details={"index": index},
                    )
                updates.append(services.Update(record.id, record, key == "patch", version))
        deletes = []
        for index, item in enumerate(lists["delete"]):
            item = {"id": item} if isinstance(item, str) else item
            if not isinstance(item, dict) or not names.RECORD_ID.matches(item.get("id")):
                raise Invalid(
                    "Each delete item is an id or {id, expected_version}.",
                    code="invalid_id",
                    details={"index": index},
                )
            unknown = sorted(str(key)[:60] for key in item if key not in ("id", "expected_version"))
            if unknown:  # a misspelt guard (expected_versoin) would delete whatever the version
                raise Invalid(
                    f"Unknown field {unknown[0]!r}.",
                    code="invalid_record",
                    details={"index": index, "field": unknown[0]},
                )
            version = item.get("expected_version")
            if version is not None and not is_version(version):
                raise Invalid(
                    "expected_version is a positive integer.",
                    code="invalid_expected_version",
                    details={"index": index},
                )
            deletes.append(services.Delete(item["id"], version))
        outcome = services.records_write(
            entry=entry,
            table=table,
            caller=caller(request),
            create=create,
            update=updates,
            delete=deletes,
            bulk=True,
        )
        shown: dict[Any, str] = {}
        # the JSON renderer's own output, written from the records' stored encodings
        text = (
            '{"created":['
            + ",".join([render_json(row, shown) for row in outcome.created])
            + '],"updated":['
            + ",".join([render_json(row, shown) for row in outcome.updated])
            + '],"deleted":'
            + encode_json([row.id for row in outcome.deleted])
            + "}"
        )
        if "\u2028" in text or "\u2029" in text:  # escaped as the renderer does (for JavaScript)
            text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return HttpResponse(text.encode(), content_type="application/json")


__all__ = ["BulkView", "RecordDetailView", "RecordListView"]
