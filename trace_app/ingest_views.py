"""The ingest endpoints outside tools call: OTLP/HTTP ``POST /v1/traces`` and Zipkin v2
``POST /api/v2/spans``.

Both take gzip and deflate request bodies (``Content-Encoding: gzip``, ``deflate``) and refuse
more than TRACE_MAX_BODY_BYTES, compressed or not (413).  OTLP answers in the request's content type: an
``ExportTraceServiceResponse`` (``partial_success`` set only when spans were refused), and every
error as a ``google.rpc.Status``.  Zipkin answers 202 with an empty body.  Spans are authorized
per service: a policy that refuses ``trace:<service>`` writes refuses that service's spans.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from auth_app.policy import resource_for
from platformsite.api.errors import Denied, Invalid, PlatformError, TooLarge, Unavailable
from platformsite.api.schema import ERROR, OBJECTS
from platformsite.api.views import ServiceView
from trace_app import selectors, zipkin_api
from trace_app.decoding import otlp, zipkin
from trace_app.decoding.common import Undecodable
from trace_app.protos import Status
from trace_app.services import ingest_spans

PROTOBUF, JSON = "application/x-protobuf", "application/json"
#: google.rpc.Code for an HTTP status (OTLP's error answers).
RPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14}


class Unsupported(PlatformError):
    status = 415
    code = "unsupported_media_type"


class RawBody(BaseParser):
    """Lets DRF accept the ingest content types; the views read the raw body themselves."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> bytes:
        return b""


def media_type(request: Request) -> str:
    return request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()


#: zlib's window bits for each Content-Encoding taken: gzip (RFC 1952), deflate (the zlib format of
#: RFC 1950, as HTTP names it and as OpenTelemetry's exporters send it with ``compression=deflate``).
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def body(request: Request) -> bytes:
    """The request body, inflated when sent with ``Content-Encoding: gzip`` or ``deflate``; 413
    past the limit."""
    limit = settings.TRACE_MAX_BODY_BYTES
    raw = request.body
    if len(raw) > limit:
        raise TooLarge("The request body is too large.", "request_too_large", {"limit_bytes": limit})
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ENCODINGS:
        raise Unsupported(f"Content-Encoding {encoding!r} is not supported (send gzip, deflate or none).")
    return inflate(raw, limit, encoding)


def inflate(raw: bytes, limit: int, encoding: str) -> bytes:
    """Every member of a gzip body (RFC 1952 lets members follow one another; a deflate body has
    one), each read to its end and checked: a truncated or corrupt body is a 400, never read in
    part."""
    out, rest = bytearray(), raw
    while True:
        inflater = zlib.decompressobj(ENCODINGS[encoding])
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise Invalid(f"The {encoding} body cannot be read: {exc}", "undecodable") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge("The uncompressed body is too large.", "request_too_large", {"limit_bytes": limit})
        if not inflater.eof:
            raise Invalid(f"The {encoding} body cannot be read: it is truncated.", "undecodable")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)
        if encoding != "gzip":
            raise Invalid(f"The {encoding} body is followed by other bytes.", "undecodable")


def ingest(spans: list[dict[str, Any]]) -> int:
    """Store spans; 503 with Retry-After when the database cannot take them now."""
    try:
        return ingest_spans(spans).stored
    except (OperationalError, InterfaceError) as exc:
        raise Unavailable(
            "The span store is unavailable; retry later.",
            details={"reason": str(exc)[:200]},
            retry_after=settings.TRACE_RETRY_AFTER,
        ) from None
    except DatabaseError as exc:  # a value the database refused: the batch is not stored
        raise Invalid(f"The spans cannot be stored: {str(exc)[:200]}", "unstorable") from None


class IngestView(ServiceView):
    service = "trace"
    parser_classes = (RawBody,)
    pagination_class = None  # Zipkin's GET /api/v2/spans answers a bare list

    def permitted(
        self, request: Request, spans: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], set[str]]:
        """The spans of services the policy lets the caller write, and the refused services."""
        allowed = self.allows(request, "write")
        verdicts = {
            service: allowed(resource_for("trace", service)) for service in {s["service"] for s in spans}
        }
        refused = {service for service, ok in verdicts.items() if not ok}
        return [s for s in spans if verdicts[s["service"]]], refused


class OtlpTracesView(IngestView):
    """OTLP/HTTP trace export."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            isinstance(response, Response)
            and response.status_code >= 400
            and media_type(request) in (PROTOBUF, JSON)  # else: the platform's own error shape
        ):
            error = (response.data or {}).get("error", {}) if isinstance(response.data, dict) else {}
            status = Status(code=RPC_CODES.get(response.status_code, 2), message=error.get("message", ""))
            # JSON: google.rpc.Status's fields, plus the platform's error object (a Status reader
            # ignores the field it does not know).
            as_json = {"code": status.code, "message": status.message, **(response.data or {})}
            answer = self.encode(request, status, as_json)
            answer.status_code = response.status_code
            for header in ("Retry-After", "WWW-Authenticate", "Allow"):
                if header in response:
                    answer[header] = response[header]
            return answer
        return response

    @staticmethod
    def encode(request: Request, message: Any, as_json: dict[str, Any]) -> HttpResponse:
        if media_type(request) == JSON:
            return HttpResponse(json.dumps(as_json), content_type=JSON)
        return HttpResponse(message.SerializeToString(), content_type=PROTOBUF)

    @extend_schema(
        summary="OTLP/HTTP trace export (protobuf or JSON)",
        request={PROTOBUF: bytes, JSON: OpenApiTypes.OBJECT},
        responses={
            200: OpenApiResponse(description="ExportTraceServiceResponse"),
            413: ERROR,
            415: ERROR,
            503: ERROR,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        kind = media_type(request)
        if kind not in (PROTOBUF, JSON):
            raise Unsupported(f"Content-Type {kind or 'none'!r}: send {PROTOBUF} or {JSON}.")
        raw = body(request)
        try:
            decoded = otlp.decode_protobuf(raw) if kind == PROTOBUF else otlp.decode_json(raw)
        except Undecodable as exc:
            raise Invalid(str(exc), "undecodable") from None
        spans, refused_services = self.permitted(request, decoded.spans)
        refused = list(decoded.refused)
        if refused_services:
            refused.append(f"policy refuses spans of {', '.join(sorted(refused_services))}")
        ingest(spans)
        rejected = len(decoded.spans) - len(spans) + len(decoded.refused)
        response = ExportTraceServiceResponse()
        as_json: dict[str, Any] = {}
        if rejected:
            message = "; ".join(refused[:5]) + (f" (and {len(refused) - 5} more)" if len(refused) > 5 else "")
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
            as_json["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": message}
        return self.encode(request, response, as_json)


class ZipkinSpansView(IngestView):
    """Zipkin v2 span ingest (JSON or protobuf ListOfSpans); GET: a service's span names."""

    def resources(self, request: Request, **kwargs: Any) -> list[str]:
        return zipkin_api.service_resources(request)  # POST: each span's service, in permitted()

    @zipkin_api.doc(
        "Zipkin: span names of a service",
        zipkin_api.NAMES,
        zipkin_api.param("serviceName", required=True),
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.span_names(zipkin_api.service_param(request)))

    @extend_schema(
        summary="Zipkin v2 span ingest (JSON list or protobuf ListOfSpans)",
        request={JSON: OBJECTS, PROTOBUF: bytes},
        responses={
            202: OpenApiResponse(description="Accepted (empty body)"),
            413: ERROR,
            415: ERROR,
            503: ERROR,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        kind = media_type(request) or JSON
        if kind not in (PROTOBUF, JSON):
            raise Unsupported(f"Content-Type {kind!r}: send {JSON} or {PROTOBUF}.")
        raw = body(request)
        try:
            spans = zipkin.decode_protobuf(raw) if kind == PROTOBUF else zipkin.decode_json(raw)
        except Undecodable as exc:
            raise Invalid(str(exc), "undecodable") from None
        spans, refused = self.permitted(request, spans)
        if refused:
            raise Denied(
                f"Policy does not allow writing spans of {', '.join(sorted(refused))}.", "policy_denied"
            )
        ingest(spans)
        return HttpResponse(status=202)
